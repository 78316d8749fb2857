"""The one compiled piece: ``teeprover._native`` (see teeprover/_native.c for what and why).

Everything else about the package is in pyproject.toml; setuptools reads both.
"""

import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class ReplacingBuildExt(build_ext):
    """Puts a rebuilt in-place ``.so`` next to the old one and renames it over it.

    setuptools copies an editable install's extension into the source tree by writing over the file
    that is there; a running process (a test server, a pool worker) that mapped the old ``.so`` then
    sees its code change under it and crashes.  A rename gives the new build a new inode and leaves the
    old one to whoever has it mapped.  (setuptools has no option for this, hence the subclass.)"""

    def copy_file(self, infile, outfile, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not os.path.isfile(outfile):
            return super().copy_file(infile, outfile, *args, **kwargs)
        staging = f"{outfile}.new"
        _, copied = super().copy_file(infile, staging, *args, **kwargs)
        os.replace(staging, outfile)
        return outfile, copied


if __name__ == "__main__":  # setuptools runs this file as __main__; tests load the class alone
    setup(
        ext_modules=[Extension("teeprover._native", ["teeprover/_native.c"], extra_compile_args=["-O3"])],
        cmdclass={"build_ext": ReplacingBuildExt},
    )
