"""Panels: the dockable widgets of the main window and the plots (pyqtgraph)."""
