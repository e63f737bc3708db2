"""Tiny synthetic datasets in every supported format, written to a folder at test time.

They are kept as strings here rather than as files so that nothing in the repository is
named like a MovieLens file (those must never be committed). The GroupLens files are
ISO-8859-1 encoded, as GroupLens ships them."""

from __future__ import annotations

from pathlib import Path

FILES: dict[str, bytes] = {
    "tiny-grouplens-100k/u.data": (b"1\t2\t5\t881250949\n1\t1\t3\t881250000\n2\t1\t4\t881250100\n"),
    "tiny-grouplens-100k/u.item": (
        b"1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
        b"2|GoldenEye (1995)|01-Jan-1995||http://x|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0\n"
    ),
    "tiny-grouplens-1m/movies.dat": (
        b"1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        b"661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
        b"3408::Am\xe9lie (2001)::Comedy|Romance\n"
    ),
    "tiny-grouplens-1m/ratings.dat": (
        b"1::1193::5::978300760\n"
        b"1::661::3::978302109\n"
        b"2::1193::4::978298413\n"
        b"2::3408::4::978299000\n"
        b"1::3408::4::978300000\n"
    ),
    "tiny-recbole/tiny.inter": (
        b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        b"1\t10\t4\t300\n"
        b"1\t20\t3\t100\n"
        b"2\t20\t5\t50\n"
        b"1\t30\t2\t100\n"
        b"2\t10\t1\t60\n"
        b"2\t30\t1\t70\n"
    ),
    "tiny-recbole/tiny.item": (
        b"item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        b"10\tToy Story\t1995\tAnimation Comedy\n"
        b"20\tGoldenEye\t1995\tAction Thriller\n"
        b"30\tFour Rooms\t1995\tThriller\n"
        b"40\tNever Watched\t1990\tDrama\n"
    ),
    "tiny-sas/items.csv": (
        b"sas_item_id,movielens_id,title,year,genres\n"
        b"1,1198,Raiders of the Lost Ark,1981,Action|Adventure\n"
        b"2,3552,Caddyshack,1980,Comedy\n"
        b"3,356,Forrest Gump,1994,Comedy|Romance|War\n"
        b'4,1197,"Princess Bride, The",1987,Action|Adventure|Comedy|Romance\n'
        b"5,2858,American Beauty,1999,Comedy|Drama\n"
    ),
    "tiny-sas/sequences.txt": (b"1 1 2 3 4\n2 2 3 5\n3 5 4 3 2 1\n"),
}


def materialise(folder: Path) -> Path:
    """Write every tiny dataset under ``folder`` (one sub-folder each) and return it."""
    for relative, content in FILES.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return folder
