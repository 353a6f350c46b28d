"""Packaging of mmohem. Dependency ranges are the supported ones; the exact
pins of the development environment live in requirements/constraints.txt."""
import os.path as osp
from setuptools import find_packages, setup

#: The scripts of tools/ the package ships, in mmohem/.mim/tools/
TOOLS = ('train.py', 'test.py', 'tool_config.py', 'dist_train.sh',
         'benchmark.py')


def _version() -> str:
    scope: dict = {}
    with open(osp.join(osp.dirname(__file__), 'mmohem', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def _readme() -> str:
    with open(
            osp.join(osp.dirname(__file__), 'README.md'),
            encoding='utf-8') as f:
        return f.read()


setup(
    name='mmohem',
    version=_version(),
    description='Online Hard Example Mining for mmdet 3.x and '
    'mmsegmentation 1.x as a config swap',
    long_description=_readme(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    packages=find_packages(include=['mmohem', 'mmohem.*']),
    # configs/, model-index.yml, the tools `mim train|test|run mmohem` run
    # and the demo backbones the demo configs start from ship inside the
    # package as mmohem/.mim/ (the OpenMMLab layout; in the checkout each is
    # a symlink to the top-level one, which the build copies), so that `mim
    # search|train mmohem` and the configs' paths relative to themselves
    # work once installed.
    package_data={
        'mmohem': [
            '.mim/model-index.yml', '.mim/configs/**/*.py',
            '.mim/configs/**/*.yml', '.mim/configs/**/*.md',
            '.mim/checkpoints/demo/*.pth', '.mim/checkpoints/demo/*.json'
        ] + [f'.mim/tools/{tool}' for tool in TOOLS]
    },
    python_requires='>=3.8',
    install_requires=[
        'torch>=1.8',
        'numpy',
        'mmengine>=0.10.0,<1.0.0',
        'mmcv>=2.0.0rc4,<2.2.0',
    ],
    extras_require={
        'det': ['mmdet>=3.0.0,<3.4.0', 'pycocotools'],
        'seg': ['mmsegmentation>=1.0.0,<1.3.0', 'ftfy', 'regex'],
        'all': [
            'mmdet>=3.0.0,<3.4.0', 'pycocotools',
            'mmsegmentation>=1.0.0,<1.3.0', 'ftfy', 'regex'
        ],
        'tests': ['pytest'],
    },
    zip_safe=False)
