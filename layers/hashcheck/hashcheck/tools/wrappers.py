"""Files wrapped the ways people upload them: archives and documents holding given bytes or pictures.

For the tests, the coverage bench and the fuzz harness: each builds what the fingerprinting opens
(`hashcheck.fingerprinting.containers`) from benign generated pictures, with the same libraries an
uploader's tools would use.
"""

from __future__ import annotations

import base64
import io
import tarfile
import zipfile

from PIL import Image


def zipped(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def tarred(entries: dict[str, bytes], mode: str = "w") -> bytes:
    """A tar (`mode` "w", or "w:gz", "w:bz2", "w:xz" compressed)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as archive:  # type: ignore[call-overload]  # mode is a str
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def sevenzipped(entries: dict[str, bytes], password: str | None = None, header_encryption: bool = False) -> bytes:
    import py7zr

    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w", password=password, header_encryption=header_encryption) as archive:
        for name, data in entries.items():
            archive.writestr(data, name)
    return out.getvalue()


def pdf_page(image: Image.Image) -> bytes:
    """A one-page PDF showing the picture as an image XObject (Pillow writes RGB as a JPEG stream,
    other modes deflated)."""
    out = io.BytesIO()
    image.save(out, "PDF", resolution=72)
    return out.getvalue()


def pdf_without_pictures(width: int = 200, height: int = 200) -> bytes:
    """A real one-page PDF, as a writer makes it, with no picture on its page."""
    import pypdf

    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=width, height=height)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_inline(image: Image.Image, jpeg: bool = True) -> bytes:
    """A one-page PDF drawing the picture as an inline image (BI ... ID <data> EI in the page's own
    operators, as some generators write small pictures): JPEG data, or raw RGB in ASCII hex."""
    import pypdf
    from pypdf.generic import DecodedStreamObject, NameObject

    rgb = image.convert("RGB")
    if jpeg:
        buffer = io.BytesIO()
        rgb.save(buffer, "JPEG", quality=90)
        data, codec = buffer.getvalue(), b"/DCT"
    else:
        data, codec = rgb.tobytes().hex().encode() + b">", b"/AHx"
    w, h = rgb.size
    operators = b"q %d 0 0 %d 0 0 cm\nBI /W %d /H %d /CS /RGB /BPC 8 /F %s ID " % (w, h, w, h, codec)
    writer = pypdf.PdfWriter()
    page = writer.add_blank_page(w, h)
    contents = DecodedStreamObject()
    contents.set_data(operators + data + b"\nEI\nQ\n")
    page[NameObject("/Contents")] = writer._add_object(contents)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def html_with(picture: bytes, media_type: str = "image/jpeg") -> bytes:
    data = base64.b64encode(picture).decode()
    return f'<!DOCTYPE html>\n<html><body><p>hi</p><img src="data:{media_type};base64,{data}"></body></html>'.encode()


def svg_with(picture: bytes, media_type: str = "image/jpeg") -> bytes:
    data = base64.b64encode(picture).decode()
    return (
        f'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg">'
        f'<image href="data:{media_type};base64,{data}"/></svg>'
    ).encode()
