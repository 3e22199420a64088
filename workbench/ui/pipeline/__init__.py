"""The recipe being edited: its document (undo stack), files, the pipeline editor and the forms generated for each stage."""
