"""Packaging for autox3d_tf."""
from setuptools import find_packages, setup

setup(
    name="autox3d_tf",
    version="0.1.0",
    description="X3D and Auto-X3D efficient video recognition models for Keras 3 / TensorFlow",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["autox3d_tf", "autox3d_tf.*"]),
    package_data={"autox3d_tf": ["resources/*.txt", "resources/*.json", "resources/**/*.json", "weights/*.json"]},
    include_package_data=True,
    install_requires=[
        "tensorflow>=2.18",
        "keras>=3.5",
        "numpy",
        "absl-py",
        "av",
        "matplotlib",
        "Pillow",
    ],
    extras_require={
        "train": ["tensorboard"],
        "serving": ["tensorflow-serving-api"],
        "reference": ["torch==2.13.0", "pytorchvideo", "fvcore"],
        "test": ["pytest", "import-linter", "build", "jax"],
        # ONNX / OpenVINO exports and their engines in `autox3d bench` (imported only when used).
        "runtimes": ["tf2onnx", "onnxruntime", "openvino"],
    },
    entry_points={"console_scripts": ["autox3d=autox3d_tf.cli.main:main"]},
)
