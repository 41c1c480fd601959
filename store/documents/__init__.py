"""Documents (DESIGN §13): files attached to a concern, stored encrypted.

- `kinds`: what a file is, decided by its content (magic bytes), never its name;
- `images`: JPEG and PNG re-encoded without their metadata (EXIF, GPS, text chunks);
- `sealing`: each file's own AES-GCM key, wrapped by the data key and bound to its row;
  the file in 64 KiB chunks, each sealed with its own nonce and bound to its place;
- `storage`: where the sealed chunks live (the database by default, or a directory or
  an S3 bucket named by `VIGIL_FILES_URL`); `s3`: the S3-compatible store;
- `intake`: an upload, read piece by piece: sniffed, cleaned, sealed and spooled
  (ciphertext only) before anything is written to the store;
- `files`: the rows, and reading a file back for someone who may see it.

The flows that use them are `store.flows.files`.
"""
