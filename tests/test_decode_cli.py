"""The Tiny Darknet page's own command, on the page's own JPEG: `tdn classify cfg/tiny.cfg
tiny.weights dog.jpg` prints its five lines, because dog.jpg decodes to Darknet's pixels."""

from __future__ import annotations

import pytest

from tdn.cli import main

from .test_cli import PAGE


@pytest.fixture
def page_command(shared):
    return ["--names", str(shared / "data" / "imagenet.shortnames.list"), "cfg/tiny.cfg",
            str(shared / "weights" / "tiny.weights"), str(shared / "images" / "dog.jpg")]


def test_the_pages_command_on_dog_jpg_digit_for_digit(capsys, page_command):
    assert main(["classify", "--backend", "numpy-exact", *page_command]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines(keepends=True)
    assert lines[0].startswith(f"{page_command[-1]}: Predicted in ") and lines[0].endswith(" seconds.\n")
    assert "".join(lines[1:]) == PAGE
    assert "warning" not in captured.err


def test_default_backend_on_dog_jpg_same_classes_within_1_5e_6(capsys, page_command):
    assert main(["classify", *page_command]) == 0
    ours = [line.rsplit(": ", 1) for line in capsys.readouterr().out.splitlines()[1:]]
    page = [line.rsplit(": ", 1) for line in PAGE.splitlines()]
    assert [name for name, _ in ours] == [name for name, _ in page]
    assert all(abs(float(mine) - float(theirs)) <= 1.5e-6 for (_, mine), (_, theirs) in zip(ours, page))


def test_decoder_pillow_is_libjpeg_turbos_pixels(capsys, page_command):
    assert main(["classify", "--backend", "numpy-exact", "--decoder", "pillow", *page_command]) == 0
    out = capsys.readouterr().out
    assert "malamute: 0.170293" in out and "malamute: 0.167168" not in out


def test_decoder_option_and_exif_are_in_help(capsys):
    for command in ("classify", "valid"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--decoder {darknet,pillow}" in text and "EXIF orientation" in text


def test_a_file_pillow_decodes_instead_gets_a_one_line_warning(capsys, tmp_path, page_command):
    from PIL import Image

    gif = tmp_path / "dog.gif"
    Image.open(page_command[-1]).convert("P").save(gif)
    assert main(["classify", *page_command[:-1], str(gif)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and str(gif) in warnings[0] and "last digits" in warnings[0]
