"""Bytes in, fingerprint out: exact hashes of every object, perceptual hashes of pictures and videos.

`fingerprint` reads an object once; `imaging` decodes untrusted pictures within limits, `containers`
opens archives and documents, `video` samples a video's frames; `pdq` and `phash` are the two
perceptual hashes, in numpy, agreeing with their reference implementations; `vpdq` is a video's hash
in the form lists exchange it. Nothing is imported here: the list format needs `vpdq` without Pillow.
"""
