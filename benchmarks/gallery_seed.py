"""Seeding of the gallery benchmark's database (benchmarks/gallery.py): users, models, jobs, pictures, likes,
collections and tags, written with bulk_create; the search vectors by the app's own update_search_vectors()."""
import contextlib
import datetime as dt
import random
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VAR = REPO / "var" / "bench-gallery"

USERS = 1000
HEAVY_PICTURES = 5000  # creator0000's pictures: the /gallery/ measured
PASSWORD = "bench-gallery-pass"
MODELS = [("retro-v1", "base"), ("miniworld-base", "base"), ("cel-shade-lora", "lora"), ("vhs-lora", "lora"),
          ("modern-anime-ft", "finetuned")]
SIZES = [((64, 64), 0.4), ((512, 512), 0.3), ((512, 768), 0.2), ((768, 512), 0.1)]
# Scene words beyond the mini-world's attributes: a long tail of rarer words for search.
EXTRAS = (
    "cherry blossoms", "sunset lighting", "rainy evening", "neon signs", "vhs grain", "film grain", "cel shading",
    "soft pastel colours", "dramatic shadows", "lens flare", "mecha in the background", "sailor uniform",
    "school bag", "bicycle", "summer festival", "fireworks", "paper lanterns", "snowfall", "autumn leaves",
    "thunderstorm", "crt scanlines", "90s ova", "80s magazine cover", "watercolor", "ink outlines",
    "floppy disk", "cassette player", "walkman", "vending machine", "train station", "rooftop", "lighthouse",
    "shrine gate", "koi pond", "ramen stall", "arcade cabinet", "synthwave", "cyberpunk", "space colony",
    "robot cat", "magical girl", "transformation sequence", "detective coat", "samurai sword", "pixel art",
    "limited palette", "half-tone dots", "smiling", "winking", "looking at viewer", "from below", "close-up",
    "full body", "dynamic pose", "wind in hair", "masterpiece", "best quality", "highly detailed",
)
TAGS = ("favourite", "wip", "print", "wallpaper", "retro", "cel", "portrait", "beach-day", "night-city",
        "school", "onigiri", "umbrella", "twintails", "glasses", "ribbon", "straw-hat", "pink-hair", "blue-hair",
        "red-hair", "village", "market", "garden", "series-a", "series-b", "contest", "commission", "ova",
        "magazine", "vhs", "pixel", "keeper", "to-upscale", "remix-me", "lora-test", "seed-hunt", "best",
        "meh", "draft", "final", "old-folks")


def ensure_database(db_url, drop=False):
    import dj_database_url
    import psycopg

    cfg = dj_database_url.parse(db_url)
    name = cfg["NAME"]
    if name.startswith("test_"):
        raise SystemExit(f"refusing to seed {name}: that is a test database name")
    with psycopg.connect(host=cfg["HOST"], port=cfg["PORT"] or 5432, user=cfg["USER"], password=cfg["PASSWORD"] or None,
                         dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and drop:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            print(f"dropped database {name}")
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")
    return name


@contextlib.contextmanager
def explicit_created_at(*models):
    """Let bulk_create write the created_at we give (spread over a year) instead of auto_now_add's now()."""
    fields = [m._meta.get_field("created_at") for m in models]
    for f in fields:
        f.auto_now_add = False
    try:
        yield
    finally:
        for f in fields:
            f.auto_now_add = True


def pictures_per_user(total, rnd):
    """creator0000 gets HEAVY_PICTURES; the rest is shared heavy-tailed (Zipf-like) among the others."""
    heavy = min(HEAVY_PICTURES, total // 5)  # a small trial run (--images 5000) keeps the shape
    weights = [1 / (rank ** 0.8) for rank in range(1, USERS)]
    rnd.shuffle(weights)
    scale = (total - heavy) / sum(weights)
    counts = [heavy] + [max(1, int(w * scale)) for w in weights]
    counts[1] += total - sum(counts)  # exact total
    return counts


def make_prompt(rnd, nprng):
    from training.miniworld import sample_attributes
    from training.miniworld.phrasing import describe

    lang = "id" if rnd.random() < 0.15 else "en"
    style = "retro" if rnd.random() < 0.6 else "modern"
    text = describe(sample_attributes(nprng), style, rnd, lang)
    extras = rnd.sample(EXTRAS, k=rnd.choice((0, 0, 1, 1, 2, 3)))
    return ", ".join([text, *extras]) if extras else text


def write_pngs(count=6):
    from PIL import Image, ImageDraw
    from PIL.PngImagePlugin import PngInfo

    folder = VAR / "media" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for k in range(count):
        path = folder / f"pic-{k}.png"
        if not path.exists():
            im = Image.new("RGB", (64, 64), (40 + 35 * k, 20, 120 + 20 * k))
            ImageDraw.Draw(im).ellipse((16, 10, 48, 46), fill=(250, 220, 190))
            info = PngInfo()
            info.add_text("parameters", f"bench picture {k}\nSteps: 20, Seed: {k}, Size: 64x64")
            im.save(path, pnginfo=info)
        names.append(f"bench/pic-{k}.png")
    return names


def seed(n_images, seed_value):
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction
    from django.db.models import Count, OuterRef, Subquery
    from django.utils import timezone

    from gallery.models import Collection, CollectionItem, ImageTag, Like, Tag
    from generator.models import AIModel, GeneratedImage, GenerationJob

    rnd, nprng = random.Random(seed_value), np.random.default_rng(seed_value)
    User = get_user_model()
    t_all = time.monotonic()
    now = timezone.now()
    files = write_pngs()

    with transaction.atomic():
        base = {}
        for name, kind in MODELS:
            base[name] = AIModel.objects.create(
                name=name, kind=kind, source=f"/nonexistent/{name}", native_size=64, is_default=name == "retro-v1",
                parent=base.get("retro-v1") if kind != "base" else None, description=f"{name}: a bench model")
        models = list(base.values())
        password = make_password(PASSWORD)
        joined = [now - dt.timedelta(days=rnd.uniform(30, 900)) for _ in range(USERS)]
        User.objects.bulk_create([User(username=f"creator{i:04d}", password=password, date_joined=joined[i])
                                  for i in range(USERS)], batch_size=1000)
        users = list(User.objects.filter(username__startswith="creator").order_by("username"))
    print(f"  {len(users)} users, {len(models)} models")

    t0 = time.monotonic()
    counts = pictures_per_user(n_images, rnd)
    size_choices, size_weights = zip(*SIZES)
    images = []
    with explicit_created_at(GenerationJob, GeneratedImage):
        for user, count in zip(users, counts):
            remaining = count
            while remaining:
                n = min(remaining, rnd.choices((1, 2, 4), (0.4, 0.2, 0.4))[0])
                remaining -= n
                width, height = rnd.choices(size_choices, size_weights)[0]
                created = now - dt.timedelta(seconds=rnd.uniform(60, 365 * 86400))
                prompt = make_prompt(rnd, nprng)
                job = GenerationJob(
                    user=user, model=rnd.choice(models), prompt=prompt, negative_prompt=rnd.choice(("", "blurry, lowres")),
                    seed=rnd.randrange(2**31), steps=rnd.choice((20, 25, 30)), guidance_scale=7.0, width=width,
                    height=height, num_images=n, scheduler="euler", status=GenerationJob.Status.DONE,
                    created_at=created, finished_at=created + dt.timedelta(seconds=5 * n))
                public = rnd.random() < 0.29  # per job, then 1 in 10 pictures flipped: a third public
                for i in range(n):
                    clip = None if rnd.random() < 0.03 else round(rnd.gauss(0.28, 0.04), 4)
                    images.append(GeneratedImage(
                        job=job, owner=user, file=rnd.choice(files), index=i, seed=job.seed + i, width=width,
                        height=height, clip_score=clip, clip_error="" if clip is not None else "CLIP unavailable",
                        parameters=f"{prompt}\nSteps: {job.steps}, Sampler: Euler, CFG scale: 7, Seed: {job.seed + i}, "
                                   f"Size: {width}x{height}, Model: {job.model.name}",
                        is_public=public if rnd.random() < 0.9 else not public,
                        created_at=created + dt.timedelta(seconds=5 * (i + 1))))
        jobs = list({id(i.job): i.job for i in images}.values())
        with transaction.atomic():
            GenerationJob.objects.bulk_create(jobs, batch_size=5000)
            GeneratedImage.objects.bulk_create(images, batch_size=5000)
    print(f"  {len(jobs)} jobs, {len(images)} pictures ({sum(i.is_public for i in images)} public) "
          f"in {time.monotonic() - t0:.0f} s")

    t0 = time.monotonic()
    GeneratedImage.objects.all().update_search_vectors()  # the app's own writer (generator.signals runs it per row)
    print(f"  search vectors in {time.monotonic() - t0:.0f} s")

    t0 = time.monotonic()
    public_ids = [i.pk for i in images if i.is_public]
    likes, seen = [], set()
    for pk in public_ids:
        k = min(USERS - 1, int(rnd.paretovariate(1.3)) - 1)  # most 0-2, a few hundreds
        for liker in rnd.sample(users, k):
            if (liker.pk, pk) not in seen:
                seen.add((liker.pk, pk))
                likes.append(Like(user=liker, image_id=pk))
    heavy = users[0]  # the measured gallery user likes a few hundred pictures (the Liked tab)
    for pk in rnd.sample(public_ids, 400):
        if (heavy.pk, pk) not in seen:
            seen.add((heavy.pk, pk))
            likes.append(Like(user=heavy, image_id=pk))
    Like.objects.bulk_create(likes, batch_size=10000)
    GeneratedImage.objects.filter(likes__isnull=False).distinct().update(like_count=Subquery(
        Like.objects.filter(image=OuterRef("pk")).values("image").annotate(n=Count("pk")).values("n")[:1]))
    print(f"  {len(likes)} likes in {time.monotonic() - t0:.0f} s")

    t0 = time.monotonic()
    by_owner = {}
    for image in images:
        by_owner.setdefault(image.owner_id, []).append(image.pk)
    collections, items = [], []
    for user in rnd.sample(users, 300) + [heavy]:
        for c in range(rnd.randint(1, 3)):
            collections.append(Collection(owner=user, name=f"board {c + 1} of {user.username}",
                                          is_public=rnd.random() < 0.5, description="bench collection"))
    Collection.objects.bulk_create(collections, batch_size=1000)
    for c in collections:
        pool = by_owner.get(c.owner_id, [])
        picks = rnd.sample(pool, min(len(pool), rnd.randint(3, 25))) + rnd.sample(public_ids, rnd.randint(0, 15))
        items += [CollectionItem(collection=c, image_id=pk) for pk in dict.fromkeys(picks)]
    CollectionItem.objects.bulk_create(items, batch_size=10000)
    tags = Tag.objects.bulk_create([Tag(name=t) for t in TAGS])
    image_tags = []
    for image in images:
        if rnd.random() < 0.15:
            image_tags += [ImageTag(image_id=image.pk, tag=t) for t in rnd.sample(tags, rnd.randint(1, 3))]
    ImageTag.objects.bulk_create(image_tags, batch_size=10000)
    print(f"  {len(collections)} collections with {len(items)} pictures, {len(image_tags)} tags "
          f"in {time.monotonic() - t0:.0f} s")

    t0 = time.monotonic()
    with connection.cursor() as cursor:
        for table in ("generator_generatedimage", "generator_generationjob", "gallery_like",
                      "gallery_collectionitem", "gallery_imagetag", "auth_user"):
            cursor.execute(f"VACUUM FULL ANALYZE {table}")  # compact: no dead rows left by the updates
            cursor.execute(f"VACUUM ANALYZE {table}")  # and the visibility map autovacuum keeps (index-only scans)
    print(f"  VACUUM FULL, VACUUM ANALYZE in {time.monotonic() - t0:.0f} s; seeded in {time.monotonic() - t_all:.0f} s")


def ensure_seeded(n_images, seed_value):
    from django.contrib.auth import get_user_model

    from generator.models import GeneratedImage

    have = GeneratedImage.objects.count()
    if have == n_images and get_user_model().objects.filter(username="creator0000").exists():
        print(f"database already seeded ({have} pictures): seeding skipped")
        return
    if have:
        raise SystemExit(f"the bench database holds {have} pictures, not {n_images}: run with --reseed")
    print(f"seeding {n_images} pictures ...")
    seed(n_images, seed_value)
