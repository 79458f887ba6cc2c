"""Folders of images and sounds as datasets (store.media, `dataset import-folder`)."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

from active_labeling.cli import main
from active_labeling.errors import InputError
from active_labeling.flow.project import Project
from active_labeling.labeling.app import create_app
from active_labeling.labeling.auth import add_user
from active_labeling.store.media import import_folder

from flow_helpers import store_fingerprint
from media_helpers import audio_folder, image_folder, png_bytes, wav_bytes


@pytest.fixture
def project(tmp_path):
    return Project.init(tmp_path / "p", classes=["cat", "dog"])


def _rows(project, name="media"):
    with project.connect(read_only=True) as con:
        return con.execute(f"SELECT * FROM dataset_{name} ORDER BY item_id").df()


def test_a_folder_of_images_becomes_a_dataset_of_relative_paths_with_sizes(project, tmp_path):
    folder = image_folder(tmp_path / "in")
    with project.connect() as con:
        info = import_folder(con, "media", folder, project.root / "media")
    project.record_dataset(info)
    rows = _rows(project)
    assert list(rows["item_id"]) == ["img1.jpg", "img2.png", "img3.jpg", "sub/img0.png"]
    assert list(rows["path"]) == [f"media/{i}" for i in rows["item_id"]]
    assert set(rows["file_type"]) == {"image"}
    assert list(rows["format"]) == ["jpeg", "png", "jpeg", "png"]
    assert list(rows["width"]) == [81, 66, 83, 64] and set(rows["height"]) == {48, 60}
    assert rows["duration_s"].isna().all()
    assert (rows["size_bytes"] == [os.path.getsize(folder / i) for i in rows["item_id"]]).all()
    assert info.ignored == 1  # notes.txt
    # The files are copied inside the project, where the app serves them from.
    assert (project.root / "media" / "media" / "sub" / "img0.png").read_bytes() == (
        folder / "sub" / "img0.png"
    ).read_bytes()
    assert project.config.datasets["media"].kind == "folder"


def test_sounds_get_their_duration_and_an_audio_task(project, tmp_path):
    with project.connect() as con:
        info = import_folder(con, "clips", audio_folder(tmp_path / "a"), project.root / "media")
    project.record_dataset(info)
    rows = _rows(project, "clips")
    assert list(rows["duration_s"].round(3)) == [0.25, 0.5, 0.75]
    assert rows["width"].isna().all() and set(rows["file_type"]) == {"audio"}
    assert project.task_of("clips") == "audio"


def test_importing_the_folder_again_keeps_the_ids(project, tmp_path):
    folder = image_folder(tmp_path / "in")
    with project.connect() as con:
        import_folder(con, "media", folder, project.root / "media")
        first = con.execute("SELECT item_id FROM dataset_media ORDER BY item_id").fetchall()
        (folder / "a-new.png").write_bytes(png_bytes())
        info = import_folder(con, "media", folder, project.root / "media", replace=True)
        again = con.execute("SELECT item_id FROM dataset_media ORDER BY item_id").fetchall()
    assert set(first) < set(again) and info.replaced is not None
    assert (project.root / "media" / "media" / "a-new.png").is_file()


def test_an_existing_dataset_is_replaced_only_when_asked(project, tmp_path):
    folder = image_folder(tmp_path / "in")
    with project.connect() as con:
        import_folder(con, "media", folder, project.root / "media")
        with pytest.raises(InputError, match=r"exists already.*--replace"):
            import_folder(con, "media", folder, project.root / "media")


@pytest.mark.parametrize(
    "name, content, why",
    [
        ("broken.png", b"\x89PNG\r\n\x1a\n not really", "not an image"),
        ("half.png", png_bytes()[:60], "not an image"),
        ("noise.wav", b"RIFF1234WAVEjunkjunk", "not a sound"),
    ],
)
def test_a_file_that_does_not_decode_refuses_the_folder_and_stores_nothing(
    project, tmp_path, name, content, why
):
    folder = image_folder(tmp_path / "in")
    (folder / name).write_bytes(content)
    before = store_fingerprint(project)
    with project.connect() as con, pytest.raises(InputError) as caught:
        import_folder(con, "media", folder, project.root / "media")
    message = str(caught.value)
    assert name in message and why in message and "nothing was imported" in message
    assert store_fingerprint(project) == before
    assert not (project.root / "media").exists() or not any((project.root / "media").iterdir())


def test_skip_bad_imports_the_files_that_decode_and_lists_the_others(project, tmp_path):
    folder = image_folder(tmp_path / "in")
    (folder / "broken.png").write_bytes(b"garbage")
    with project.connect() as con:
        info = import_folder(con, "media", folder, project.root / "media", skip_bad=True)
    assert info.rows == 4 and [r for r, _ in info.skipped] == ["broken.png"]
    assert not (project.root / "media" / "media" / "broken.png").exists()


def test_a_link_to_a_file_outside_the_folder_is_refused(project, tmp_path):
    folder = image_folder(tmp_path / "in")
    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes())
    (folder / "link.png").symlink_to(secret)
    with (
        project.connect() as con,
        pytest.raises(InputError, match=r"link.png: a link to a file outside"),
    ):
        import_folder(con, "media", folder, project.root / "media")


def test_a_folder_without_media_or_missing_is_refused(project, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("hi")
    with project.connect() as con:
        with pytest.raises(InputError, match="holds no image"):
            import_folder(con, "media", empty, project.root / "media")
        with pytest.raises(InputError, match="no such folder"):
            import_folder(con, "media", tmp_path / "nope", project.root / "media")


def test_the_cli_imports_a_folder_and_says_what_it_found(project, tmp_path, capsys):
    folder = image_folder(tmp_path / "in")
    (folder / "x.wav").write_bytes(wav_bytes())
    code = main(
        ["dataset", "import-folder", str(project.root), "pics", str(folder), "--task", "boxes"]
    )
    out = capsys.readouterr().out
    assert code == 0 and "4 images, 1 sounds" in out and "task boxes" in out
    assert Project.open(project.root).task_of("pics") == "boxes"
    (folder / "bad.jpg").write_bytes(b"nope")
    assert (
        main(["dataset", "import-folder", str(project.root), "pics", str(folder), "--replace"]) == 1
    )
    assert "bad.jpg: not an image" in capsys.readouterr().err


def test_folder_media_are_served_behind_the_login_and_items_with_slashes_work(project, tmp_path):
    with project.connect() as con:
        project.record_dataset(
            import_folder(con, "media", image_folder(tmp_path / "in"), project.root / "media")
        )
        password = add_user(con, "ann", "labeler")
    app = create_app(project.root)
    anonymous = TestClient(app)
    assert anonymous.get("/media/media/sub/img0.png").status_code == 401
    client = TestClient(app)
    token = client.post("/api/login", json={"username": "ann", "password": password}).json()
    client.headers["X-CSRF-Token"] = token["csrf_token"]
    assert client.get("/media/media/sub/img0.png").content[:4] == b"\x89PNG"
    items = client.get("/api/items/next?count=4").json()["items"]
    # An image classification project: the card shows the image (the folder's path column).
    assert items[0]["media"] == {"path": "/media/media/img1.jpg"}
    answer = client.post("/api/items/sub%2Fimg0.png/label", json={"label": "cat"})
    assert answer.status_code == 200, answer.text
    assert client.get("/api/items/sub%2Fimg0.png").json()["current_label"] == "cat"
