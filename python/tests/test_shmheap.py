"""Tests of the Python binding (python/shmheap), run by `meson test` (suite
'python') with PYTHONPATH at the build tree's copy of the package.

Cases are /python/area/case. Every heap has a name unique to this process
and case, and is removed in tearDown. With --tap the results are printed as
TAP (what meson reads); without, as unittest's usual report. Run as
`test_shmheap.py --child NAME HANDLE N MESSAGE`, it is the second process of
/python/procs/share-by-handle.
"""

import ctypes
import errno
import gc
import os
import re
import subprocess
import sys
import traceback
import unittest

import shmheap

PAGE = os.sysconf("SC_PAGE_SIZE")
HEAP_LEN = 16 * PAGE

try:
    import numpy
except ImportError:
    numpy = None


def child_main(name, handle, n, message):
    """The second process: connects by name, checks what the parent wrote
    at HANDLE, writes the reverse back in place, allocates an answer of its
    own and prints that object's handle."""
    handle, n = int(handle), int(n)
    expected = message.encode()
    with shmheap.Heap.connect(name) as heap:
        view = heap.view(handle, n)
        got = bytes(view[: len(expected)])
        if got != expected:
            print("child: read %r, expected %r" % (got, expected), file=sys.stderr)
            return 1
        view[: len(expected)] = expected[::-1]
        answer = ("child %d" % os.getpid()).encode()
        obj = heap.alloc(len(answer))
        obj.view[:] = answer
        print(obj.handle)
    return 0


def addr_of(view):
    """The address of a view's first byte (the views the binding hands out
    are casts of a ctypes array)."""
    return ctypes.addressof(view.obj)


class HeapCase(unittest.TestCase):
    """Gives each case a unique heap name, removed afterwards."""

    def setUp(self):
        """A heap name unique to this process and case."""
        case = self.id().rsplit(".", 1)[-1]
        self.name = "/shmheap-py-%d-%s" % (os.getpid(), case)
        self.names = [self.name]

    def tearDown(self):
        """Removes every name the case used, if it is still there."""
        for name in self.names:
            try:
                shmheap.destroy(name)
            except FileNotFoundError:
                pass

    def assertErrno(self, err, fn, *args, **kw):
        """Asserts that FN(*ARGS) raises OSError with errno ERR; returns it."""
        with self.assertRaises(OSError) as cm:
            fn(*args, **kw)
        self.assertEqual(cm.exception.errno, err, "%s: %s" % (errno.errorcode[err], cm.exception))
        return cm.exception


class TestLifecycle(HeapCase):
    """Making, connecting to, disconnecting from and removing heaps."""

    def test_context_managers(self):
        """/python/heap/context-managers"""
        with shmheap.Heap.create(self.name, HEAP_LEN) as heap:
            self.assertFalse(heap.closed)
            obj = heap.alloc(32)
            obj.view[:4] = b"keep"
            handle = obj.handle
        self.assertTrue(heap.closed)
        self.assertRaises(ValueError, heap.alloc, 1)
        # disconnect left the heap and its object for the others
        with shmheap.Heap.connect(self.name) as again:
            self.assertEqual(bytes(again.view(handle, 4)), b"keep")
            self.assertEqual(again.stats()["used_blocks"], 1)
        self.assertTrue(again.closed)
        # an exception inside the block disconnects and propagates
        with self.assertRaises(KeyError):
            with shmheap.Heap.connect(self.name) as third:
                raise KeyError("inside")
        self.assertTrue(third.closed)

    def test_destroy(self):
        """/python/heap/destroy"""
        heap = shmheap.Heap.create(self.name, HEAP_LEN)
        heap.destroy()
        self.assertTrue(heap.closed)
        self.assertErrno(errno.ENOENT, shmheap.Heap.connect, self.name)
        self.assertErrno(errno.ENOENT, shmheap.destroy, self.name)
        # module-level destroy removes a name
        shmheap.Heap.create(self.name, HEAP_LEN).disconnect()
        shmheap.destroy(self.name)
        self.assertErrno(errno.ENOENT, shmheap.Heap.connect, self.name)

    def test_use_after_disconnect(self):
        """/python/heap/use-after-disconnect"""
        heap = shmheap.Heap.create(self.name, HEAP_LEN)
        obj = heap.alloc(8)
        heap.disconnect()
        heap.disconnect()  # idempotent
        for call, args in [
            (heap.alloc, (8,)),
            (heap.view, (obj.handle, 8)),
            (heap.free, (obj,)),
            (heap.usable_size, (obj,)),
            (heap.stats, ()),
            (heap.check, ()),
            (heap.blocks, ()),
            (heap.grow, (2 * HEAP_LEN,)),
            (heap.publish, ("k", obj)),
            (heap.lookup, ("k",)),
            (heap.unpublish, ("k",)),
            (heap.lookup_or_alloc, ("k", 8)),
            (heap.names, ()),
            (heap.destroy, ()),
        ]:
            with self.assertRaises(ValueError, msg=call.__name__):
                call(*args)
        # the heap itself is still there (destroy refused before unlinking)
        shmheap.Heap.connect(self.name).disconnect()

    def test_collected_heap_keeps_views(self):
        """/python/heap/gc-keeps-views"""
        heap = shmheap.Heap.create(self.name, HEAP_LEN)
        view = heap.alloc(64).view
        del heap
        gc.collect()
        # the view keeps its heap mapped
        view[:] = b"x" * 64
        self.assertEqual(bytes(view), b"x" * 64)

    def test_library_env(self):
        """/python/heap/library-env"""
        code = "import shmheap; print(shmheap._lib._name)"

        def run(value):
            env = dict(os.environ)
            if value is None:
                env.pop("SHMHEAP_LIBRARY", None)
            else:
                env["SHMHEAP_LIBRARY"] = value
            return subprocess.run([sys.executable, "-c", code], env=env, timeout=60,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        # without the variable: the path Meson recorded
        plain = run(None)
        self.assertEqual(plain.returncode, 0, plain.stderr.decode())
        self.assertEqual(plain.stdout.decode().strip(), shmheap._libpath.LIBRARY)
        # the variable wins, and a wrong one is not papered over
        chosen = os.path.realpath(shmheap._libpath.LIBRARY)
        named = run(chosen)
        self.assertEqual(named.returncode, 0, named.stderr.decode())
        self.assertEqual(named.stdout.decode().strip(), chosen)
        wrong = run("/nonexistent/libshmheap.so")
        self.assertNotEqual(wrong.returncode, 0)
        self.assertIn("ImportError", wrong.stderr.decode())
        self.assertIn("/nonexistent/libshmheap.so", wrong.stderr.decode())

    def test_version(self):
        """/python/version"""
        self.assertRegex(shmheap.__version__, r"^\d+\.\d+\.\d+$")
        self.assertEqual(shmheap.__version__, shmheap.library_version())


class TestObjects(HeapCase):
    """alloc, views, free, stats, blocks and check on one heap."""

    def test_alloc_view(self):
        """/python/objects/alloc-view"""
        with shmheap.Heap.create(self.name, HEAP_LEN) as heap:
            obj = heap.alloc(100)
            self.assertNotEqual(obj.handle, shmheap.NULL_HANDLE)
            self.assertEqual(obj.handle % shmheap.ALIGNMENT, 0)
            self.assertEqual(obj.size, 100)
            self.assertEqual(len(obj.view), 100)
            self.assertFalse(obj.view.readonly)
            self.assertEqual(obj.view.format, "B")
            self.assertGreaterEqual(heap.usable_size(obj), 100)
            self.assertEqual(heap.usable_size(obj.handle), heap.usable_size(obj))
            obj.view[:] = bytes(range(100))
            # another view of the same handle sees the same bytes: zero-copy
            other = heap.view(obj.handle, 100)
            self.assertEqual(bytes(other), bytes(range(100)))
            other[0] = 0xEE
            self.assertEqual(obj.view[0], 0xEE)
            self.assertEqual(addr_of(other), addr_of(obj.view))
            # a view may be shorter than the object, never longer
            self.assertEqual(len(heap.view(obj.handle, 10)), 10)
            self.assertErrno(errno.EINVAL, heap.view, obj.handle, heap.usable_size(obj) + 1)
            # alloc(0) is a unique object that can be freed
            zero = heap.alloc(0)
            self.assertEqual(len(zero.view), 0)
            self.assertNotEqual(zero.handle, obj.handle)
            heap.free(zero)
            heap.free(obj.handle)

    def test_first_fit_full_heap(self):
        """/python/objects/whole-heap"""
        with shmheap.Heap.create(self.name, HEAP_LEN) as heap:
            big = heap.alloc(HEAP_LEN - shmheap.OVERHEAD)
            self.assertEqual(len(big.view), HEAP_LEN - shmheap.OVERHEAD)
            big.view[-1] = 7
            self.assertErrno(errno.ENOMEM, heap.alloc, 1)
            heap.free(big)
            # first fit: the next object takes the lowest address again
            self.assertEqual(heap.alloc(16).handle, big.handle)

    def test_free_errors(self):
        """/python/objects/free-errors"""
        with shmheap.Heap.create(self.name, HEAP_LEN) as heap:
            a = heap.alloc(64)
            b = heap.alloc(64)
            before = heap.stats()
            # interior handle, handle outside the heap, the null handle
            self.assertErrno(errno.EINVAL, heap.free, a.handle + 16)
            self.assertErrno(errno.EINVAL, heap.free, HEAP_LEN * 4)
            self.assertErrno(errno.EINVAL, heap.free, shmheap.NULL_HANDLE)
            self.assertErrno(errno.EINVAL, heap.usable_size, a.handle + 16)
            self.assertErrno(errno.EINVAL, heap.view, a.handle + 16, 1)
            self.assertEqual(heap.stats(), before)
            heap.free(a)
            # double free is refused and changes nothing
            after = heap.stats()
            self.assertErrno(errno.EINVAL, heap.free, a)
            self.assertEqual(heap.stats(), after)
            heap.free(b)
            heap.check()
            self.assertRaises(ValueError, heap.alloc, -1)
            self.assertRaises(TypeError, heap.alloc, 1.5)
            self.assertRaises(TypeError, heap.free, "x")
            self.assertErrno(errno.ENOMEM, heap.alloc, 1 << 60)
            self.assertRaises(OverflowError, heap.alloc, 1 << 64)
            self.assertRaises(OverflowError, heap.free, 1 << 64)

    def test_stats(self):
        """/python/objects/stats"""
        fields = {
            "size", "used_bytes", "free_bytes", "largest_free", "used_blocks",
            "free_blocks", "format_version", "reserved", "max_size", "names",
        }
        with shmheap.Heap.create(self.name, HEAP_LEN) as heap:
            empty = heap.stats()
            self.assertEqual(set(empty), fields)
            self.assertEqual(empty["size"], HEAP_LEN)
            self.assertEqual(empty["used_bytes"], 0)
            self.assertEqual(empty["used_blocks"], 0)
            self.assertEqual(empty["free_blocks"], 1)
            self.assertEqual(empty["largest_free"], HEAP_LEN - shmheap.OVERHEAD)
            self.assertGreaterEqual(empty["format_version"], 2)
            self.assertEqual(empty["max_size"], HEAP_LEN)
            self.assertEqual(empty["names"], 0)
            header = HEAP_LEN - empty["free_bytes"]
            objs = [heap.alloc(n) for n in (1, 100, 1000)]
            st = heap.stats()
            self.assertEqual(st["used_blocks"], 3)
            self.assertEqual(st["used_bytes"] + st["free_bytes"] + header, HEAP_LEN)
            self.assertGreaterEqual(st["used_bytes"], 1101 + 3 * 8)
            heap.free(objs[1])
            st = heap.stats()
            self.assertEqual((st["used_blocks"], st["free_blocks"]), (2, 2))
            for o in objs[::2]:
                heap.free(o)
            self.assertEqual(heap.stats(), empty)

    def test_blocks(self):
        """/python/objects/blocks"""
        with shmheap.Heap.create(self.name, HEAP_LEN) as heap:
            objs = [heap.alloc(48) for _ in range(3)]
            heap.free(objs[1])
            blocks = heap.blocks()
            self.assertEqual([b.used for b in blocks], [True, False, True, False])
            self.assertEqual([b.handle for b in blocks if b.used], [objs[0].handle, objs[2].handle])
            self.assertEqual([b.handle for b in blocks if not b.used], [0, 0])
            for b in blocks:
                if b.used:
                    self.assertEqual(b.usable, heap.usable_size(b.handle))
            offsets = [b.offset for b in blocks]
            self.assertEqual(offsets, sorted(offsets))
            st = heap.stats()
            self.assertEqual(sum(b.size for b in blocks), st["used_bytes"] + st["free_bytes"])
            self.assertEqual(list(heap.walk()), blocks)

    def test_check_reports_damage(self):
        """/python/objects/check-damage"""
        with shmheap.Heap.create(self.name, HEAP_LEN) as heap:
            obj = heap.alloc(64)
            self.assertIsNone(heap.check())
            # scribble over the object's tag, the 8 bytes before it
            ctypes.memset(addr_of(obj.view) - 8, 0x5A, 8)
            e = self.assertErrno(errno.EUCLEAN, heap.check)
            self.assertIn("offset", str(e))

    @unittest.skipIf(numpy is None, "numpy is not installed")
    def test_numpy_frombuffer(self):
        """/python/objects/numpy"""
        with shmheap.Heap.create(self.name, HEAP_LEN) as heap:
            obj = heap.alloc(8 * 100)
            arr = numpy.frombuffer(obj.view, dtype=numpy.float64)
            self.assertEqual(arr.shape, (100,))
            self.assertTrue(arr.flags.writeable)
            self.assertEqual(arr.ctypes.data, addr_of(obj.view))
            arr[:] = numpy.arange(100, dtype=numpy.float64)
            self.assertEqual(bytes(heap.view(obj.handle, 800)), arr.tobytes())
            again = numpy.frombuffer(heap.view(obj.handle, 800), dtype=numpy.float64)
            self.assertEqual(float(again.sum()), 4950.0)
            # handles and sizes kept in numpy arrays work as they come
            kept = numpy.array([obj.handle], dtype=numpy.uint64)
            self.assertEqual(bytes(heap.view(kept[0], 8)), bytes(heap.view(obj.handle, 8)))
            small = heap.alloc(numpy.int64(24))
            self.assertGreaterEqual(heap.usable_size(small), 24)


class TestErrors(HeapCase):
    """The errno values of failed creates and connects."""

    def test_create_connect_errno(self):
        """/python/errors/create-connect"""
        heap = shmheap.Heap.create(self.name, HEAP_LEN)
        try:
            e = self.assertErrno(errno.EEXIST, shmheap.Heap.create, self.name, HEAP_LEN)
            self.assertIsInstance(e, FileExistsError)
            self.assertEqual(e.filename, self.name)
        finally:
            heap.disconnect()
        missing = self.name + "-missing"
        e = self.assertErrno(errno.ENOENT, shmheap.Heap.connect, missing)
        self.assertIsInstance(e, FileNotFoundError)
        other = self.name + "-other"
        self.names.append(other)
        self.assertErrno(errno.EINVAL, shmheap.Heap.create, "no-slash", HEAP_LEN)
        self.assertErrno(errno.EINVAL, shmheap.Heap.create, "/a/b", HEAP_LEN)
        self.assertErrno(errno.EINVAL, shmheap.Heap.create, other, 0)
        self.assertErrno(errno.EINVAL, shmheap.Heap.create, other, PAGE + 1)
        self.assertErrno(errno.EINVAL, shmheap.Heap.create, other, HEAP_LEN, mode=0o1777)
        # bits C's unsigned int would drop are refused, not dropped
        self.assertErrno(errno.EINVAL, shmheap.Heap.create, other, HEAP_LEN, mode=2**32 + 0o600)
        # a NUL would cut the name short in C: refused, not cut
        self.assertRaises(ValueError, shmheap.Heap.create, other + "\0junk", HEAP_LEN)
        self.assertRaises(ValueError, shmheap.Heap.connect, self.name + "\0junk")
        self.assertErrno(errno.EINVAL, shmheap.Heap.connect, "no-slash")
        # nothing was left behind by the failed creates
        self.assertErrno(errno.ENOENT, shmheap.Heap.connect, other)
        self.assertRaises(TypeError, shmheap.Heap.create, 42, HEAP_LEN)

    def test_not_a_heap(self):
        """/python/errors/not-a-heap"""
        path = "/dev/shm" + self.name
        if not os.path.isdir("/dev/shm"):
            self.skipTest("no /dev/shm")
        # bytes that are no heap header (all zero would read as a heap
        # whose creator has not finished: EAGAIN)
        with open(path, "wb") as f:
            f.write(b"not a heap " * (PAGE // 11 + 1))
        self.assertErrno(errno.EINVAL, shmheap.Heap.connect, self.name)

    def test_mode(self):
        """/python/errors/mode"""
        with shmheap.Heap.create(self.name, HEAP_LEN, mode=0o640):
            self.assertEqual(os.stat("/dev/shm" + self.name).st_mode & 0o777, 0o640)


class TestProcesses(HeapCase):
    """Two Python processes sharing objects by handle."""

    def test_share_by_handle(self):
        """/python/procs/share-by-handle"""
        message = "hello from %d" % os.getpid()
        with shmheap.Heap.create(self.name, HEAP_LEN) as heap:
            heap.alloc(200)  # so the shared object is not at the first offset
            obj = heap.alloc(64)
            obj.view[: len(message)] = message.encode()
            child = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--child",
                 self.name, str(obj.handle), "64", message],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
            )
            self.assertEqual(child.returncode, 0, child.stderr.decode())
            # the child wrote the message back reversed, in place
            self.assertEqual(bytes(obj.view[: len(message)]), message.encode()[::-1])
            # and left an object of its own, named by the handle it printed
            handle = int(child.stdout.decode().strip())
            answer = heap.view(handle, heap.usable_size(handle))
            self.assertTrue(re.match(rb"child \d+", bytes(answer)), bytes(answer))
            self.assertEqual(heap.stats()["used_blocks"], 3)
            heap.free(handle)
            heap.check()


class TestNames(HeapCase):
    """Names and growth answer ENOSYS until the library has them; these
    cases skip then, and run once it does."""

    def names_or_skip(self, heap):
        """Skips the case when the library answers ENOSYS for names."""
        try:
            heap.lookup("probe")
        except OSError as e:
            if e.errno == errno.ENOSYS:
                self.skipTest("the library has no names yet (ENOSYS)")
            self.assertEqual(e.errno, errno.ENOENT)

    def test_publish_lookup(self):
        """/python/names/publish-lookup"""
        with shmheap.Heap.create(self.name, HEAP_LEN) as heap:
            self.names_or_skip(heap)
            obj = heap.alloc(32)
            heap.publish("config", obj)
            self.assertEqual(heap.lookup("config"), obj.handle)
            self.assertEqual(heap.lookup(b"config"), obj.handle)
            self.assertErrno(errno.EEXIST, heap.publish, "config", obj.handle)
            other = heap.alloc(16)
            heap.publish("second", other.handle)
            self.assertEqual(sorted(heap.names()), sorted([("config", obj.handle), ("second", other.handle)]))
            self.assertEqual(heap.stats()["names"], 2)
            heap.unpublish("config")
            self.assertErrno(errno.ENOENT, heap.lookup, "config")
            self.assertErrno(errno.ENOENT, heap.unpublish, "config")
            self.assertEqual(heap.usable_size(obj), heap.usable_size(obj.handle))  # still allocated
            self.assertErrno(errno.EINVAL, heap.publish, "", obj)
            self.assertErrno(errno.EINVAL, heap.publish, "x" * 256, obj)
            self.assertErrno(errno.EINVAL, heap.publish, "bad", obj.handle + 16)
            # a NUL would cut the key short in C: refused, not cut
            self.assertRaises(ValueError, heap.publish, b"second\0x", obj)
            self.assertRaises(ValueError, heap.lookup, "second\0other")
            self.assertRaises(ValueError, heap.unpublish, "second\0")
            self.assertEqual(heap.lookup("second"), other.handle)
            # freeing a named object removes its name
            heap.free(other)
            self.assertErrno(errno.ENOENT, heap.lookup, "second")
            self.assertEqual(list(heap.names()), [])

    def test_lookup_or_alloc(self):
        """/python/names/lookup-or-alloc"""
        with shmheap.Heap.create(self.name, HEAP_LEN) as heap:
            self.names_or_skip(heap)
            obj, created = heap.lookup_or_alloc("table", 128)
            self.assertTrue(created)
            self.assertEqual(bytes(obj.view), b"\0" * 128)
            obj.view[:3] = b"abc"
            again, created = heap.lookup_or_alloc("table", 128)
            self.assertFalse(created)
            self.assertEqual(again.handle, obj.handle)
            self.assertEqual(bytes(again.view[:3]), b"abc")
            self.assertEqual(heap.lookup("table"), obj.handle)
            with shmheap.Heap.connect(self.name) as other:
                self.assertEqual(other.lookup("table"), obj.handle)

    def test_grow(self):
        """/python/names/grow"""
        try:
            heap = shmheap.Heap.create(self.name, HEAP_LEN, max_size=4 * HEAP_LEN)
        except OSError as e:
            if e.errno == errno.ENOSYS:
                self.skipTest("the library has no growable heaps yet (ENOSYS)")
            raise
        with heap:
            self.assertEqual(heap.stats()["max_size"], 4 * HEAP_LEN)
            obj = heap.alloc(100)
            obj.view[:2] = b"ok"
            heap.grow(2 * HEAP_LEN)
            self.assertEqual(heap.stats()["size"], 2 * HEAP_LEN)
            self.assertEqual(bytes(obj.view[:2]), b"ok")  # nothing moved
            self.assertErrno(errno.EINVAL, heap.grow, 8 * HEAP_LEN)
            big = heap.alloc(3 * HEAP_LEN)  # grows by itself
            self.assertGreater(heap.stats()["size"], 2 * HEAP_LEN)
            heap.free(big)
            heap.check()
        self.assertErrno(errno.EINVAL, shmheap.Heap.create, self.name + "-g", HEAP_LEN, max_size=PAGE)


class TapResult(unittest.TestResult):
    """Prints one TAP line per case, named by the case's docstring."""

    def __init__(self):
        """Counts cases from 1."""
        super().__init__()
        self.n = 0

    @staticmethod
    def label(test):
        """The case's /python/area/case name (its docstring's first line)."""
        doc = test.shortDescription()
        return doc if doc else test.id()

    def line(self, ok, test, extra=""):
        """One TAP result line."""
        self.n += 1
        print("%s %d %s%s" % ("ok" if ok else "not ok", self.n, self.label(test), extra), flush=True)

    def diag(self, err):
        """The traceback of ERR as TAP comment lines."""
        for text in traceback.format_exception(*err):
            for line in text.rstrip("\n").split("\n"):
                print("# " + line)

    def addSuccess(self, test):
        """ok."""
        super().addSuccess(test)
        self.line(True, test)

    def addFailure(self, test, err):
        """not ok, with the failed assertion."""
        super().addFailure(test, err)
        self.line(False, test)
        self.diag(err)

    def addError(self, test, err):
        """not ok, with the exception."""
        super().addError(test, err)
        self.line(False, test)
        self.diag(err)

    def addSkip(self, test, reason):
        """ok with a TAP SKIP directive and the reason."""
        super().addSkip(test, reason)
        self.line(True, test, " # SKIP " + reason)


def main(argv):
    """The child of share-by-handle, or the whole suite (TAP with --tap)."""
    if len(argv) == 6 and argv[1] == "--child":
        return child_main(*argv[2:])
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    if "--tap" in argv:
        print("TAP version 13")
        print("1..%d" % suite.countTestCases(), flush=True)
        result = TapResult()
        suite.run(result)
        return 0 if result.wasSuccessful() else 1
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
