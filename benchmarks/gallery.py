"""Gallery pages at 100,000 pictures on PostgreSQL: Explore search, /gallery/ and profiles (issue 17).

    make bench-gallery                        # or: .venv/bin/python benchmarks/gallery.py
    .venv/bin/python benchmarks/gallery.py --requests 300 --database-url postgres://postgres@127.0.0.1/mybench
    .venv/bin/python benchmarks/gallery.py --reseed       # drop the bench database and seed it again

Seeds its own PostgreSQL database (--database-url, or BENCH_GALLERY_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/retroportal_gallery_bench: created and migrated if missing; a name starting
with test_ is refused) through benchmarks/gallery_seed.py: 1,000 users, 100,000 GeneratedImage rows (about 42,000
jobs of 1, 2 or 4 pictures), a third of them public, prompts phrased by the mini-world's phrasebook
(training.miniworld.phrasing: English and Indonesian, shuffled slots, plus extra scene words) so full-text
search has common and rare words; about 80,000 likes (heavy-tailed), 600 collections, 30,000 tags. One creator
(creator0000) has 5,000 pictures. Rows go in with bulk_create in batches; the search vectors are then written by
the app's own ImageQuerySet.update_search_vectors() (what the post_save signal runs for a single picture), like
counts from the Like rows; then VACUUM FULL and VACUUM ANALYZE (the visibility map autovacuum keeps on a live
site). Seeding is skipped when the database already holds the seed (5 minutes on the shared 2-core machine
otherwise). Files: six small PNGs shared by all rows (the pages only need URLs).

Measures in-process through django.test.Client, DEBUG off (production settings except the static-files storage,
the plain one, so no collectstatic is needed), round-robin over the page kinds after warm-up rounds, --requests
requests per kind with varied queries (words, stems, phrases, -negations, OR, Indonesian, filters, sorts, pages,
24/48/96 a page):
  Explore search, signed out and signed in        target p95 < 150 ms
  /gallery/ of the creator with 5,000 pictures    target p95 < 100 ms
  /u/<name>/ profiles of creators big and small   target p95 < 100 ms
with the time spent in SQL and the CPU time of the Django process; the SQL queries one request makes at 24 and
at 96 pictures a page (the same number = no N+1); then EXPLAIN (ANALYZE, BUFFERS) of the queries an Explore
search runs for a rare, a middling and a common word (the GIN index image_search_gin is used for the selective
ones; for a word in most prompts PostgreSQL rightly reads the public rows instead). Prints a table and the
machine. Timings are printed, never asserted.
"""
import argparse
import io
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # before benchmarks/ (this file's folder): `gallery` is the app, not this script

from benchmarks.gallery_seed import MODELS, TAGS, VAR, ensure_database, ensure_seeded  # noqa: E402

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/retroportal_gallery_bench"

SEARCHES = (
    # rare (scene extras, ~1 % each), mid (an attribute value, ~15 %), common (~50-90 %), stems, phrases,
    # negations, OR, Indonesian (matched by the `simple` configuration)
    "lighthouse", "walkman", "koi pond", "ramen", "fireworks", "synthwave", "samurai", "vending machine",
    "umbrella", "umbrellas", "onigiri", "twintail", "ponytail", "glasses", "straw hat", "classroom", "beach",
    "seaside", "garden", "market", "village", "city at night", "grandmother", "schoolgirl", "old gentleman",
    "pink hair", "blue ponytail", "red shirt", "purple", "girl", "girls", "boy", "hair", "retro anime",
    '"straw hat" -glasses', "umbrella -girl", "onigiri or umbrella", "beach sunset", "neon cyberpunk",
    "rambut merah", "payung", "kacamata", "pantai", "gadis", "kakek", "di pasar",
)
COMMON = ("umbrella", "onigiri", "glasses", "girl", "girls", "boy", "hair", "retro anime", "purple", "beach")
EXPLAIN_WORDS = ("lighthouse", "umbrella", "hair")  # rare, mid, common


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default=os.environ.get("BENCH_GALLERY_DATABASE_URL", DEFAULT_DB))
    p.add_argument("--images", type=int, default=100_000, help="pictures to seed (default 100000)")
    p.add_argument("--requests", type=int, default=200, help="timed requests per page kind (default 200)")
    p.add_argument("--warmup", type=int, default=20, help="untimed requests per page kind first (default 20)")
    p.add_argument("--reseed", action="store_true", help="drop the bench database first and seed it again")
    p.add_argument("--seed", type=int, default=17, help="random seed of the data and of the queries")
    return p.parse_args()


def configure_env(db_url):
    os.environ.update(
        DJANGO_SETTINGS_MODULE="retroportal.settings",
        DEBUG="0",  # production settings: no query log, template debug off
        SECRET_KEY=os.environ.get("SECRET_KEY") or "bench-gallery-only-secret",
        ALLOWED_HOSTS="testserver",
        SECURE_SSL_REDIRECT="0",  # the test client speaks plain http
        DATABASE_URL=db_url,
        DATABASE_CONN_MAX_AGE=os.environ.get("DATABASE_CONN_MAX_AGE", "60"),  # a warm web worker keeps its connection
        REDIS_URL=os.environ.get("BENCH_REDIS_URL", os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12")),
        MEDIA_ROOT=str(VAR / "media"),
        STATIC_ROOT=str(VAR / "static"),
        LOG_LEVEL="WARNING",
        RETROPORTAL_API_RATE="",  # the API's per-user throttle off: this measures pages, not the rate limit
    )


# --------------------------------------------------------------------------- measuring


def percentile(values, q):
    values = sorted(values)
    index = min(len(values) - 1, max(0, int(round(q / 100 * len(values) + 0.5)) - 1))
    return values[index]


def explore_url(rnd):
    query = {"q": rnd.choice(SEARCHES)}
    extra = rnd.random()
    if extra < 0.15:
        query["sort"] = rnd.choice(("new", "likes", "clip"))
    elif extra < 0.25:
        query["model"] = rnd.choice([m for m, _ in MODELS])
    elif extra < 0.32:
        query["size"] = rnd.choice(("64", "512x768"))
    elif extra < 0.38:
        query["since"] = rnd.choice(("month", "year"))
    elif rnd.random() < 0.3 and query["q"] in COMMON:  # later pages where there surely are some
        query["page"] = rnd.choice((2, 3, 10))
    return "/explore/?" + "&".join(f"{k}={v}" for k, v in query.items())


def api_search_url(rnd):
    """/api/images/?public=true&search=… as an integration pages through published pictures (20 a page)."""
    query = {"public": "true", "search": rnd.choice(SEARCHES)}
    if rnd.random() < 0.15:
        query["sort"] = rnd.choice(("new", "likes", "clip"))
    elif rnd.random() < 0.3 and query["search"] in COMMON:
        query["page"] = rnd.choice((2, 3, 10))
    return "/api/images/?" + "&".join(f"{k}={v}" for k, v in query.items())


class PlainPaginatorClient:
    """The baseline for the API's pages: the same client and URLs with Django's plain Paginator (one joined query
    sorted over every match, plus a COUNT), which the image list used before CardPaginator."""

    def __init__(self, client):
        self.client = client

    def get(self, url):
        from unittest import mock

        from django.core.paginator import Paginator

        from generator.api.pagination import ImagePagination

        with mock.patch.object(ImagePagination, "django_paginator_class", Paginator):
            return self.client.get(url)


def gallery_url(rnd, pictures):
    query = {}
    per_page = rnd.choice((48, 96)) if rnd.random() < 0.2 else 24
    r = rnd.random()
    if r < 0.45:
        query["page"] = rnd.randint(1, max(1, min(20, pictures // per_page)))
    elif r < 0.65:
        query["q"] = rnd.choice(SEARCHES)
    elif r < 0.75:
        query["sort"] = rnd.choice(("clip", "likes"))
    elif r < 0.82:
        query["tab"] = "liked"
    elif r < 0.9:
        query["tag"] = rnd.choice(TAGS)
    else:
        query["min_clip"] = "0.3"
    if per_page != 24:
        query["per_page"] = per_page
    return "/gallery/?" + "&".join(f"{k}={v}" for k, v in query.items())


def profile_url(rnd, names, big):
    name = rnd.choice(names)
    query = ""
    r = rnd.random()
    if r < 0.25 and name in big:  # creators with 5 pages of public pictures at least
        query = f"?page={rnd.randint(2, 5)}"
    elif r < 0.35:
        query = f"?q={rnd.choice(SEARCHES)}"
    return f"/u/{name}/{query}"


class SqlClock:
    """Seconds spent in cursor.execute (the database's work and the transfer) during a request."""

    def __init__(self):
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - t0


def fetch(client, url):
    """One request: (wall seconds, seconds in SQL, CPU seconds of this process)."""
    from django.db import connection

    clock = SqlClock()
    with connection.execute_wrapper(clock):
        t0, c0 = time.perf_counter(), time.process_time()
        response = client.get(url)
        body = response.content
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if response.status_code != 200 or not (b"<html" in body or body.startswith(b'{"count"')):
        raise SystemExit(f"{url}: HTTP {response.status_code}")
    return wall, clock.seconds, cpu


def measure(kinds, n, warmup):
    """Round-robin over the page kinds (one request of each in turn), so that the load other processes put on a
    shared machine falls on every kind alike. Returns {label: [(url, wall, sql, cpu), ...]}."""
    for _ in range(warmup):
        for label, client, url, _target in kinds:
            fetch(client, url())
    results = {label: [] for label, *_ in kinds}
    for i in range(n):
        for label, client, url, _target in kinds:
            address = url()
            results[label].append((address, *fetch(client, address)))
        if (i + 1) % 50 == 0:
            print(f"  {i + 1}/{n} rounds", flush=True)
    return results


def query_count(client, url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(ctx.captured_queries), ctx.captured_queries


def explain(client, word, cards=False):
    """EXPLAIN (ANALYZE, BUFFERS) of the query an Explore search really ran for its ranked page of ids and the
    count of matches (and, with `cards`, of the query that then reads those 24 pictures with job, model, owner)."""
    from django.db import connection

    _, queries = query_count(client, f"/explore/?q={word}")
    out = []
    with connection.cursor() as cursor:
        for sql in (q["sql"] for q in queries if "@@" in q["sql"]):
            ranked = "OVER ()" in sql
            if ranked or cards:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                plan = "\n".join(row[0] for row in cursor.fetchall())
                out.append(("ranked ids and count" if ranked else "cards of those ids", sql if ranked else "", plan))
    return out


def machine():
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{platform.platform()}, {model}, {os.cpu_count()} cores ({cores} usable by this process), "
            f"load average {load}, python {platform.python_version()}")


def main():
    args = parse_args()
    configure_env(args.database_url)
    (VAR / "static").mkdir(parents=True, exist_ok=True)
    db_name = ensure_database(args.database_url, drop=args.reseed)

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count, Q
    from django.test import Client, override_settings

    call_command("migrate", verbosity=0)
    ensure_seeded(args.images, args.seed)

    from generator.models import GeneratedImage

    User = get_user_model()
    heavy = User.objects.get(username="creator0000")
    viewer = User.objects.get(username="creator0500")
    names = list(User.objects.filter(username__startswith="creator").order_by("?")
                 .values_list("username", flat=True)[:60]) + ["creator0000"] * 10
    heavy_pictures = GeneratedImage.objects.filter(owner=heavy).count()
    big = set(User.objects.annotate(public=Count("images", filter=Q(images__is_public=True)))
              .filter(public__gte=5 * 24).values_list("username", flat=True))
    anon, signed_in, owner = Client(), Client(), Client()
    signed_in.force_login(viewer)
    owner.force_login(heavy)
    rnd = random.Random(args.seed)
    api_rnd, plain_rnd = random.Random(args.seed), random.Random(args.seed)  # the same URLs for both API kinds
    n, w = args.requests, args.warmup

    kinds = [  # label, client, url maker, target ms
        ("Explore search, signed out", anon, lambda: explore_url(rnd), 150),
        ("Explore search, signed in", signed_in, lambda: explore_url(rnd), 150),
        (f"/gallery/ ({heavy_pictures} pictures)", owner, lambda: gallery_url(rnd, heavy_pictures), 100),
        ("/u/<name>/ profile", anon, lambda: profile_url(rnd, names, big), 100),
        ("/explore/ (no search)", anon, lambda: "/explore/" + rnd.choice(("", "?page=2", "?sort=likes",
                                                                          "?sort=clip")), None),
        ("/ home, signed out", anon, lambda: "/", None),
        ("API search (CardPaginator)", signed_in, lambda: api_search_url(api_rnd), None),
        ("API search (plain Paginator: before)", PlainPaginatorClient(signed_in), lambda: api_search_url(plain_rnd),
         None),
    ]
    counted = {  # per page kind: the same page at 24 and at 96 pictures
        "Explore search, signed out": ("/explore/?q=umbrella", anon),
        "Explore search, signed in": ("/explore/?q=umbrella", signed_in),
        f"/gallery/ ({heavy_pictures} pictures)": ("/gallery/?tag=favourite", owner),
        "/u/<name>/ profile": ("/u/creator0000/", anon),
        "/explore/ (no search)": ("/explore/", anon),
        "/ home, signed out": ("/", anon),
        "API search (CardPaginator)": ("/api/images/?public=true&search=umbrella", signed_in),
        "API search (plain Paginator: before)": ("/api/images/?public=true&search=umbrella", signed_in),
    }
    with override_settings(STORAGES={**django.conf.settings.STORAGES,
                                     "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}):
        results = measure(kinds, n, w)
        rows = []
        for label, _client, _url, target in kinds:
            page, who = counted[label]
            sep = "&" if "?" in page else "?"
            rows.append((label, results[label], target, query_count(who, page)[0],
                         query_count(who, page + f"{sep}per_page=96")[0]))
        plans = [(f"signed out, /explore/?q={word}", explain(anon, word, cards=word == EXPLAIN_WORDS[0]))
                 for word in EXPLAIN_WORDS]
        plans.append((f"signed in, /explore/?q={EXPLAIN_WORDS[1]}", explain(signed_in, EXPLAIN_WORDS[1])))

    total = GeneratedImage.objects.count()
    public = GeneratedImage.objects.filter(is_public=True).count()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]

    report = io.StringIO()
    say = lambda *a: print(*a, file=report)  # noqa: E731
    say(f"machine: {machine()}, PostgreSQL {pg}")
    say(f"data: {total} pictures ({public} public), {User.objects.count()} users; database {db_name}; "
        f"{n} timed requests per kind after {w} warm-up, django.test.Client in-process, DEBUG off, "
        f"CONN_MAX_AGE {os.environ['DATABASE_CONN_MAX_AGE']}")
    say("")
    say("| page | requests | p50 ms | p95 ms | max ms | target p95 | SQL ms p50 / p95 | CPU ms p50 | SQL queries (24 / 96 a page) |")
    say("|---|---|---|---|---|---|---|---|---|")
    by_size = []
    for label, samples, target, c24, c96 in rows:
        wall, sql, cpu = ([s[k] * 1000 for s in samples] for k in (1, 2, 3))
        p95 = percentile(wall, 95)
        verdict = "" if target is None else f"< {target} ms {'met' if p95 < target else 'MISSED'}"
        say(f"| {label} | {len(wall)} | {statistics.median(wall):.1f} | {p95:.1f} | {max(wall):.1f} | {verdict} | "
            f"{statistics.median(sql):.1f} / {percentile(sql, 95):.1f} | {statistics.median(cpu):.1f} | {c24} / {c96} |")
        sizes = {}
        for address, w_, _s, c_ in samples:
            size = next((part.split("=")[1] for part in address.split("?")[-1].split("&")
                         if part.startswith("per_page=")), "24")
            sizes.setdefault(size, []).append((w_ * 1000, c_ * 1000))
        if len(sizes) > 1:
            by_size.append(f"{label}: " + "; ".join(
                f"{size} a page: {len(v)} requests, p50 {statistics.median(w for w, _ in v):.1f} ms, "
                f"p95 {percentile([w for w, _ in v], 95):.1f} ms, CPU p50 {statistics.median(c for _, c in v):.1f} ms"
                for size, v in sorted(sizes.items(), key=lambda kv: int(kv[0]))))
    for line in by_size:
        say("")
        say(line)
    walls = {label: [sample[1] for sample in samples] for label, samples, *_ in rows}
    card, plain = walls["API search (CardPaginator)"], walls["API search (plain Paginator: before)"]
    say("")
    say(f"API search, the same {len(card)} URLs: plain Paginator / CardPaginator = "
        f"{statistics.median(plain) / statistics.median(card):.2f}x at p50, "
        f"{percentile(plain, 95) / percentile(card, 95):.2f}x at p95")
    say("")
    say("SQL ms: time in cursor.execute (PostgreSQL's work and the transfer); CPU ms: this Python process "
        "(Django, templates); the rest of the wall time is waiting for a CPU on a shared machine.")
    for where, found in plans:
        for kind, sql, plan in found:
            say("")
            say(f"EXPLAIN (ANALYZE, BUFFERS), {where}: the query of the {kind} "
                f"(GIN index image_search_gin {'USED' if 'image_search_gin' in plan else 'not used'}):")
            if sql:
                say(sql)
            say(plan)
    print()
    print(report.getvalue(), end="")


if __name__ == "__main__":
    main()
