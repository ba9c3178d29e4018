"""PRCC (Yang, Wu and Zheng, TPAMI 2019) as distributed: ``<root>/prcc/rgb/{train,val,test}``.

``train/<pid>/<file>.jpg`` and ``val/<pid>/<file>.jpg`` take the camera from the first letter of the
file name; ``test/{A,B,C}/<pid>/<file>.jpg`` from the camera folder. Cameras A and B saw each person
in the same clothes, camera C in other clothes, so the outfit follows from the camera alone. In the
test split camera A is the gallery and cameras B (same clothes) and C (changed clothes) are queries.
"""

from __future__ import annotations

from pathlib import Path

from spcreid.data.images import list_dirs, list_files

DATASET_DIR = Path("prcc") / "rgb"
SPLIT_FOLDERS = ("train", "val", "test")
CAMERAS = {"A": 0, "B": 1, "C": 2}
CLOTHES = {"A": 0, "B": 0, "C": 1}
TEST_ROLES = {"A": "gallery", "B": "query", "C": "query"}


def scan(dataset_dir: Path) -> tuple[list[dict], list[str]]:
    """Rows of every image under ``dataset_dir`` (``.../prcc/rgb``) and a message per bad entry.

    Missing split folders are skipped here; the layout check reports them.
    """
    rows: list[dict] = []
    problems: list[str] = []
    for split in ("train", "val"):
        folder = dataset_dir / split
        if folder.is_dir():
            for pid_dir in _pid_folders(folder, problems, f"{split}/ holds one folder per person id"):
                for image in _jpg_files(pid_dir, problems):
                    camera = image.name[:1]
                    if camera not in CAMERAS:
                        problems.append(
                            f"{image}: file name must start with the camera letter A, B or C "
                            "(e.g. A_cropped_rgb001.jpg)"
                        )
                        continue
                    rows.append(_row(image, int(pid_dir.name), camera, split, role=split))
    test = dataset_dir / "test"
    if test.is_dir():
        for entry in list_files(test, problems):
            problems.append(f"{entry}: unexpected file; test/ holds the camera folders A, B and C")
        for camera_dir in list_dirs(test):
            if camera_dir.name not in CAMERAS:
                problems.append(f"{camera_dir}: unexpected folder; test/ holds only the camera folders A, B and C")
        for camera in CAMERAS:
            camera_dir = test / camera
            if not camera_dir.is_dir():
                problems.append(f"{camera_dir}: missing folder (test/{camera} holds camera {camera}'s test images)")
                continue
            for pid_dir in _pid_folders(camera_dir, problems, f"test/{camera}/ holds one folder per person id"):
                for image in _jpg_files(pid_dir, problems):
                    rows.append(_row(image, int(pid_dir.name), camera, "test", role=TEST_ROLES[camera]))
    return rows, problems


def _row(image: Path, pid: int, camera: str, split: str, role: str) -> dict:
    return {
        "path": str(image),
        "pid": pid,
        "camid": CAMERAS[camera],
        "clothes_id": CLOTHES[camera],
        "split": split,
        "role": role,
    }


def _pid_folders(folder: Path, problems: list[str], expectation: str) -> list[Path]:
    for entry in list_files(folder, problems):
        problems.append(f"{entry}: unexpected file; {expectation}")
    good = []
    for pid_dir in list_dirs(folder):
        # isdigit() alone also accepts '²' or '٣', which int() then refuses or misreads.
        if pid_dir.name.isascii() and pid_dir.name.isdigit() and len(pid_dir.name) <= 9:
            good.append(pid_dir)
        else:
            problems.append(f"{pid_dir}: folder name is not a person id (digits, e.g. 001); {expectation}")
    return good


def _jpg_files(pid_dir: Path, problems: list[str]) -> list[Path]:
    for sub in list_dirs(pid_dir):
        problems.append(f"{sub}: unexpected folder; person folders hold only .jpg images")
    images = []
    for entry in list_files(pid_dir, problems):
        if entry.suffix.lower() == ".jpg":
            images.append(entry)
        else:
            problems.append(f"{entry}: not a .jpg image; person folders hold only .jpg images")
    return images
