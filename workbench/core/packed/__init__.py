"""The Deep Compression packed format (Han et al., ICLR 2016), written by `core/export/packed.py`.

    huffman.py       canonical Huffman codes: lengths (limited to 15 bits), table bytes, vectorised encode,
                     the version-1 decoder
    chunked.py       chunk tables and the table-driven decoder (every chunk of every stream side by side)
    sparse_index.py  relative (gap) indices with filler entries when a gap overflows its bits
    tensor_codec.py  one tensor -> streams (codebook, indices, gaps, values), choosing the smallest layout
    container.py     the file: magic, checksum, compressed JSON header, payload; validated before decoding
"""
