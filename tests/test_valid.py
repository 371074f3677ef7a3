"""tdn valid: labels from CSV, folders and Darknet's rule; accuracy counts."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tdn.cli import main
from tdn.image import decode, preprocess_pixels
from tdn.network import load
from tdn.pipeline import InputError
from tdn.validation import ClassIndex, Tally, darknet_rule, from_csv
from tests.batch_helpers import write_small_net

NAMES = ["tench", "crane", "cat", "wildcat", "crane", "dog", "fox", "owl", "eel", "bee"]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """Three class folders of random images, labels set to what the network predicts for
    some of them, so that the expected accuracy is known."""
    folder = tmp_path_factory.mktemp("valid")
    cfg, weights = write_small_net(folder)
    net = load(cfg, weights, "numpy")
    rng = np.random.default_rng(7)
    images = []
    for number in range(9):
        path = folder / f"img{number}.png"
        Image.fromarray(rng.integers(0, 256, (30 + number, 40, 3), dtype=np.uint8)).save(path)
        p = net.predict(preprocess_pixels(decode(path), 32, 32, "resize_min"))
        images.append((path, np.argsort(-p, kind="stable")))
    labels = folder / "labels.txt"
    labels.write_text("\n".join(NAMES) + "\n")
    return {"folder": folder, "cfg": cfg, "weights": weights, "images": images, "labels": labels}


def test_tally_counts_top1_and_top5():
    tally = Tally(4)
    tally.add(2, np.array([0.1, 0.2, 0.6, 0.1], np.float32))
    tally.add(3, np.array([0.4, 0.3, 0.2, 0.1], np.float32))
    assert tally.images.tolist() == [0, 0, 1, 1] and tally.top1.tolist() == [0, 0, 1, 0]
    assert tally.accuracy() == (0.5, 1.0)


def test_class_names_indices_and_duplicates():
    classes = ClassIndex(NAMES)
    assert classes.index("fox", "x") == 6 and classes.index("4", "x") == 4
    with pytest.raises(InputError, match="'crane' names classes 1 and 4"):
        classes.index("crane", "list.csv:3")
    with pytest.raises(InputError, match="list.csv:2: class 'lion' is not in the labels list"):
        from_csv("list.csv", "path,class\na.jpg,lion\n", classes)
    rows = from_csv("list.csv", "path,class\na.jpg,dog\n\nb.jpg, 7\n", classes)
    assert rows == [("a.jpg", 5), ("b.jpg", 7)]
    with pytest.raises(InputError, match="list.csv:1: expected 'path,class', got 3"):
        from_csv("list.csv", "a.jpg,dog,cat\n", classes)


def test_darknet_rule_takes_the_first_name_and_reports_ambiguity():
    labelled, unmatched, ambiguous = darknet_rule(
        ["val/crane_01.jpg", "val/wildcat_2.jpg", "val/fox.jpg", "val/zebra.jpg"], NAMES)
    assert labelled == [("val/crane_01.jpg", 1), ("val/wildcat_2.jpg", 2), ("val/fox.jpg", 6)]
    assert unmatched == ["val/zebra.jpg"]
    assert [(a.path, a.matches) for a in ambiguous] == [("val/crane_01.jpg", (1, 4)),
                                                         ("val/wildcat_2.jpg", (2, 3))]


def run_valid(labelled, capsys, *args, labels=None):
    code = main(["valid", str(labelled["cfg"]), str(labelled["weights"]), "--labels",
                 str(labels or labelled["labels"]), "--backend", "numpy", "--batch", "3", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_csv_list_accuracy(labelled, capsys, tmp_path):
    # Label images 0-3 with their top-1 class, 4-5 with their third, the rest with their seventh:
    # top-1 4/9, top-5 6/9.
    rows = ["path,class"]
    for number, (path, order) in enumerate(labelled["images"]):
        rank = 0 if number < 4 else 2 if number < 6 else 6
        rows.append(f"{path},{order[rank]}")
    listing = tmp_path / "val.csv"
    listing.write_text("\n".join(rows) + "\n")
    code, out, err = run_valid(labelled, capsys, "--list", str(listing))
    assert code == 0
    assert out.startswith(f"images: 9  top-1: {4 / 9:.4f}  top-5: {6 / 9:.4f}  images/s: ")
    table = out.splitlines()[2:]
    assert sum(int(line.split()[1]) for line in table) == 9
    assert sum(int(line.split()[2]) for line in table) == 4
    assert "validated 9 images, skipped 0" in err


def test_folder_labels_skip_unreadable_and_darknet_rule_reports_crane(labelled, capsys, tmp_path):
    for name, number in [("fox", 0), ("owl", 1), ("owl", 2), ("3", 3)]:
        (tmp_path / name).mkdir(exist_ok=True)
        Image.open(labelled["images"][number][0]).save(tmp_path / name / f"{number}.png")
    (tmp_path / "owl" / "broken.jpg").write_text("not a picture")
    code, out, err = run_valid(labelled, capsys, str(tmp_path))
    # As tdn classify: exit status 1 when any image was skipped.
    assert code == 1 and out.startswith("images: 4  ")
    assert "broken.jpg" in err and "validated 4 images, skipped 1" in err
    rows = {line.split()[-1]: line.split()[1] for line in out.splitlines()[2:]}
    assert rows == {"wildcat": "1", "fox": "1", "owl": "2"}

    crane = tmp_path / "crane_photos"
    crane.mkdir()
    Image.open(labelled["images"][0][0]).save(crane / "bird.png")
    listing = tmp_path / "darknet.txt"
    listing.write_text(f"{crane / 'bird.png'}\n")
    # A name past the network's 10 classes ("photos") is not a label, as in Darknet.
    longer = tmp_path / "longer.txt"
    longer.write_text("\n".join(NAMES + ["photos"]) + "\n")
    code, out, err = run_valid(labelled, capsys, "--list", str(listing), "--label-rule", "darknet",
                               labels=longer)
    assert code == 0 and out.startswith("images: 1  ")
    assert "1 of 1 paths contain more than one label name" in err
    assert f"{crane / 'bird.png'}: 'crane' (1), 'crane' (4) -> 1\n" in err


def test_dir_and_list_are_exclusive(labelled, capsys, tmp_path):
    code, _, err = run_valid(labelled, capsys)
    assert code == 1 and "give either DIR or --list FILE" in err
