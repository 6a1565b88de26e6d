"""Selected pictures as one zip, streamed while it is written: each PNG goes in unchanged (stored, not
recompressed), so its A1111 `parameters` chunk is intact, and no copy of the whole zip exists anywhere."""
from zipstream import ZIP_STORED, ZipStream

from generator.models import GeneratedImage


def archive_name(image: GeneratedImage, used: set) -> str:
    stem = f"retroportal-{image.seed}-{str(image.pk)[:8]}"
    name, n = f"{stem}.png", 1
    while name in used:
        n += 1
        name = f"{stem}-{n}.png"
    used.add(name)
    return name


def _chunks(field, size=64 * 1024):
    with field.open("rb") as handle:
        while block := handle.read(size):
            yield block


def image_zip(images) -> ZipStream:
    """A ZipStream over `images` (already narrowed by visible_to); iterate it to get the bytes.

    Files missing from storage are left out and listed in MISSING.txt inside the zip."""
    stream, used, missing = ZipStream(compress_type=ZIP_STORED, sized=False), set(), []
    for image in images:
        if not image.file or not image.file.storage.exists(image.file.name):
            missing.append(str(image.pk))
            continue
        stream.add(_chunks(image.file), archive_name(image, used))
    if missing:
        stream.add("These pictures' files are missing from storage:\n" + "\n".join(missing) + "\n", "MISSING.txt")
    return stream
