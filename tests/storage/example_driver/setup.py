"""
How the example driver would be packaged: its code, and its plugin module
in twisted/plugins (which has no __init__.py: it joins Twisted's).
"""

from setuptools import setup

setup(
    name="txregistry-exampledriver",
    version="0.1.0",
    description="An example txregistry storage driver",
    packages=["txregistry_exampledriver", "twisted.plugins"],
    package_data={"twisted": ["plugins/txregistry_exampledriver.py"]},
    install_requires=["txregistry"],
)
