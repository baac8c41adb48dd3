"""FerretDB (SQLite backend) serves what pymongo's GridFS needs, byte for byte."""

from __future__ import annotations

import hashlib
import os

import gridfs
import pytest
from pymongo import MongoClient
from pymongo.errors import DuplicateKeyError

SIZE = 20 * 1024 * 1024


@pytest.fixture
def database(mongo_url: str):
    with MongoClient(mongo_url) as client:
        yield client["gridfs_smoke"]
        client.drop_database("gridfs_smoke")


def test_20_mb_round_trip_byte_for_byte(database) -> None:
    payload = os.urandom(SIZE)
    bucket = gridfs.GridFSBucket(database)

    file_id = bucket.upload_from_stream("big.bin", payload)
    found = list(bucket.find({"filename": "big.bin"}))
    assert [f._id for f in found] == [file_id]
    assert found[0].length == SIZE

    data = bucket.open_download_stream_by_name("big.bin").read()
    assert hashlib.sha256(data).digest() == hashlib.sha256(payload).digest()

    bucket.delete(file_id)
    assert list(bucket.find({"filename": "big.bin"})) == []
    assert database["fs.chunks"].count_documents({"files_id": file_id}) == 0


def test_chunks_index_is_unique(database) -> None:
    bucket = gridfs.GridFSBucket(database)
    file_id = bucket.upload_from_stream("small.txt", b"hello")
    unique = [ix for ix in database["fs.chunks"].list_indexes() if ix.get("unique")]
    assert [dict(ix["key"]) for ix in unique] == [{"files_id": 1, "n": 1}]
    with pytest.raises(DuplicateKeyError):
        database["fs.chunks"].insert_one({"files_id": file_id, "n": 0, "data": b"again"})


def test_same_name_uploaded_twice_is_a_second_revision(database) -> None:
    bucket = gridfs.GridFSBucket(database)
    bucket.upload_from_stream("report.json", b"first")
    bucket.upload_from_stream("report.json", b"second")
    assert len(list(bucket.find({"filename": "report.json"}))) == 2
    assert bucket.open_download_stream_by_name("report.json", revision=0).read() == b"first"
    assert bucket.open_download_stream_by_name("report.json").read() == b"second"
