"""The compiled extension of fastloss: Cython bridge + C kernels, the hot kernels built once per SIMD level.

The family files in src_c/ are compiled once per level (scalar; on x86-64 also avx2 and avx512) with that
level's flags and -DFL_LEVEL=<level>; dispatch.c picks one level at import. OpenMP is used when the compiler
accepts -fopenmp (probed); otherwise the build warns and the kernels run serial.
FASTLOSS_DEBUG=1 builds with -O0 -g and Cython's bounds checks on. FASTLOSS_SANITIZE=1 adds AddressSanitizer and
UndefinedBehaviorSanitizer to the kernels, the extension and its link (tools/sanitize.sh runs the tests so).
"""
import concurrent.futures
import glob
import hashlib
import itertools
import os
import platform
import shutil
import subprocess
import sys
import tempfile

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("FASTLOSS_DEBUG", "") == "1"
# -fno-var-tracking-assignments: the long pair kernels exceed its size limit, and gcc ran it, gave up and compiled
# them again without (regression.c at avx512 with ASan + UBSan: 388 s -> 179 s; reports keep their lines, -g)
SANITIZE = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined",
            "-g", "-fno-var-tracking-assignments"] if os.environ.get("FASTLOSS_SANITIZE", "") == "1" else []
# Every C file but dispatch.c is a family file (or the table), compiled once per SIMD level.
KERNEL_SOURCES = sorted(f for f in glob.glob("src_c/*.c") if os.path.basename(f) != "dispatch.c")
KERNEL_HEADERS = sorted(glob.glob("src_c/*.h"))
# -std=c11 turns FMA contraction off: with it, the serial and the OpenMP copy of a loop could be contracted
# differently and n_threads would change the last bits.
# -O1 under the sanitizers, as their documentation advises (the same checks; regression.c at avx2 compiled in
# 358 s instead of 434 s with ASan + UBSan, two compiles sharing this loaded machine)
OPT = "-O0" if DEBUG else "-O1" if SANITIZE else "-O3"
BASE_FLAGS = ["-std=c11", OPT, "-fno-math-errno", "-fno-trapping-math", "-Wall",
              "-Wno-unknown-pragmas"] + (["-g"] if DEBUG else [])
X86_LEVELS = {
    "avx2": ["-mavx2", "-mfma", "-mf16c"],
    "avx512": ["-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx2", "-mfma", "-mf16c"],
}
IS_X86_64 = platform.machine().lower() in ("x86_64", "amd64")
# FASTLOSS_LEVELS=scalar,avx2 builds only the x86 levels named (scalar is always built: it is the fallback): for
# a sanitizer build that runs on one machine, or a developer's build; a wheel builds them all.
ONLY_LEVELS = [w for w in os.environ.get("FASTLOSS_LEVELS", "").replace(",", " ").split() if w != "scalar"]
if set(ONLY_LEVELS) - set(X86_LEVELS):
    sys.exit(f"FASTLOSS_LEVELS: unknown level(s) {sorted(set(ONLY_LEVELS) - set(X86_LEVELS))}; "
             f"known: scalar, {', '.join(X86_LEVELS)}")


def compiles(compiler_cmd, flags, code="int main(void){return 0;}\n"):
    """True if the C compiler builds a tiny program with these flags."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(code)
        try:
            res = subprocess.run(compiler_cmd + flags + [src, "-o", os.path.join(tmp, "probe")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            return False
        return res.returncode == 0


def cache_path(cc, level, postargs, src):
    """FASTLOSS_OBJECT_CACHE=dir: where the object of this kernel compile is kept, named by a hash of everything
    that makes it (compiler and its version, flags, the source and every header), or None without the variable.
    CI builds the editable install and then the wheel from the same sources with the same flags: the second build
    takes the objects from the first (a full kernel build is minutes on two cores)."""
    cache = os.environ.get("FASTLOSS_OBJECT_CACHE")
    if not cache:
        return None
    os.makedirs(cache, exist_ok=True)
    h = hashlib.sha256()
    version = subprocess.run(cc + ["--version"], capture_output=True).stdout
    compiler = " ".join(w for w in cc if os.path.basename(w) != "ccache")  # ccache makes the same object
    for part in [compiler.encode(), version, level.encode(), " ".join(postargs).encode()]:
        h.update(part + b"\0")
    for path in [src] + KERNEL_HEADERS:
        with open(path, "rb") as f:
            h.update(os.path.basename(path).encode() + b"\0" + f.read() + b"\0")
    return os.path.join(cache, f"{os.path.basename(src)[:-2]}-{level}-{h.hexdigest()[:24]}.o")


class BuildExt(build_ext):
    def run(self):
        super().run()
        if not self.inplace:
            # `pip install . && python -m fastloss` run in the source tree imports the package from ./fastloss
            # (the current directory comes first on sys.path): put the compiled module there too.
            here = os.path.dirname(os.path.abspath(__file__))
            for ext in self.extensions:
                built = self.get_ext_fullpath(ext.name)
                target = os.path.join(here, *ext.name.split(".")[:-1], os.path.basename(built))
                if os.path.isdir(os.path.dirname(target)) and os.path.abspath(built) != target:
                    shutil.copy2(built, target)

    def build_extension(self, ext):
        # the compiler command without its flags: "ccache gcc" (CC="ccache gcc") is two words, and the probes
        # below with "ccache" alone failed: no OpenMP and no SIMD level but scalar, without an error
        cc = list(itertools.takewhile(lambda word: not word.startswith("-"), self.compiler.compiler_so))
        omp_code = "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n"
        openmp = compiles(cc, ["-fopenmp"], omp_code)
        if not openmp:
            print("fastloss: WARNING: the compiler has no OpenMP; kernels will run on one thread", file=sys.stderr)
        omp = ["-fopenmp"] if openmp else []
        levels = {"scalar": []}
        if IS_X86_64:
            for name, flags in X86_LEVELS.items():
                if (not ONLY_LEVELS or name in ONLY_LEVELS) and compiles(cc, flags):
                    levels[name] = flags
        # every (level, file) compiled on its own, as many at once as there are CPUs (build_ext -j N sets another
        # number): the per-level kernel files are most of the build (each element-wise loss is, per level, 12
        # loops for float64 and 3 vector parts and a tail loop for each float type), and the compiler runs one
        # file on one core
        jobs = [(level, flags, src) for level, flags in levels.items() for src in KERNEL_SOURCES]
        for level in levels:
            os.makedirs(os.path.join(self.build_temp, level, "src_c"), exist_ok=True)

        def compile_one(job):
            level, flags, src = job
            out_dir = os.path.join(self.build_temp, level)
            postargs = BASE_FLAGS + omp + flags + SANITIZE
            cached = cache_path(cc, level, postargs, src)
            if cached and os.path.exists(cached):
                obj = self.compiler.object_filenames([src], output_dir=out_dir)[0]
                shutil.copy2(cached, obj)
                return [obj]
            objs = self.compiler.compile([src], output_dir=out_dir, macros=[("FL_LEVEL", level)],
                                         include_dirs=["src_c"], extra_postargs=postargs, depends=KERNEL_HEADERS)
            if cached:
                shutil.copy2(objs[0], cached + ".tmp")
                os.replace(cached + ".tmp", cached)
            return objs

        workers = self.parallel if isinstance(self.parallel, int) and self.parallel > 1 else (os.cpu_count() or 1)
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            ext.extra_objects = [obj for objs in pool.map(compile_one, jobs) for obj in objs]
        ext.extra_compile_args = ["-O0", "-g"] if DEBUG else [OPT]
        ext.extra_compile_args += omp + SANITIZE
        ext.extra_link_args = omp + SANITIZE
        # dispatch.c offers the levels built: FL_HAVE_AVX2, FL_HAVE_AVX512
        ext.define_macros = ext.define_macros + [(f"FL_HAVE_{lvl.upper()}", "1") for lvl in levels if lvl != "scalar"]
        ext.depends = KERNEL_SOURCES + KERNEL_HEADERS
        super().build_extension(ext)


extension = Extension(
    "fastloss._kernels",
    sources=["fastloss/_kernels.pyx", "src_c/dispatch.c"],
    include_dirs=["src_c", numpy.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
)

setup(
    ext_modules=cythonize(
        [extension],
        compiler_directives={
            "language_level": 3,
            "boundscheck": DEBUG,
            "wraparound": DEBUG,
            "cdivision": not DEBUG,
            "initializedcheck": DEBUG,
        },
    ),
    cmdclass={"build_ext": BuildExt},
)
