"""shmheap: a heap in POSIX shared memory, for Python.

This module owns the Python face of libshmheap: pure Python over ctypes, no
compiler needed. Several processes (in any language) connect to one named
heap, allocate and free objects in it, and pass the objects to each other
as handles: integers that name the same bytes in every process, whatever
address each one maps the heap at. An object's bytes are a writable,
zero-copy memoryview, so ``numpy.frombuffer(obj.view, ...)`` works on them.

    import shmheap
    with shmheap.Heap.create("/jobs", 1 << 20) as heap:
        obj = heap.alloc(16)
        obj.view[:5] = b"hello"
        print(obj.handle)        # give this number to another process

    # in another process
    with shmheap.Heap.connect("/jobs") as heap:
        print(bytes(heap.view(handle, 5)))

Errors from the library raise OSError with the errno the C call set
(FileExistsError for EEXIST, FileNotFoundError for ENOENT, and so on); the
errno values are those of include/shmheap.h. Using a Heap after it was
disconnected raises ValueError.

Finding the library: the path in the environment variable SHMHEAP_LIBRARY
if set; else the path Meson recorded when it configured this copy (the build
tree's library for an uninstalled copy, the installed library for an
installed one); else whatever ctypes.util.find_library("shmheap") finds.
"""

import collections
import ctypes
import ctypes.util
import errno as _errno
import operator
import os

from . import _libpath

__all__ = [
    "Heap",
    "Object",
    "Block",
    "destroy",
    "library_version",
    "NULL_HANDLE",
    "OVERHEAD",
    "ALIGNMENT",
    "__version__",
]

#: The version of this binding (the shmheap release it was built with).
__version__ = _libpath.VERSION

#: The handle that names no object.
NULL_HANDLE = 0
#: Bytes a heap keeps for itself: on an empty heap of len bytes every
#: request up to len - OVERHEAD succeeds.
OVERHEAD = 80
#: The alignment of every object's first byte.
ALIGNMENT = 16


def _load():
    """Loads libshmheap: SHMHEAP_LIBRARY, then the recorded path, then the
    system's search; raises ImportError naming every place tried."""
    tried = []
    candidates = []
    env = os.environ.get("SHMHEAP_LIBRARY")
    if env:
        # An explicit choice: no fallback hides a wrong path.
        candidates.append(env)
    else:
        if _libpath.LIBRARY:
            candidates.append(_libpath.LIBRARY)
        found = ctypes.util.find_library("shmheap")
        if found:
            candidates.append(found)
    for path in candidates:
        try:
            return ctypes.CDLL(path, use_errno=True)
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
    raise ImportError(
        "shmheap: cannot load libshmheap; tried: %s"
        % ("; ".join(tried) or "nothing (set SHMHEAP_LIBRARY)")
    )


_lib = _load()

_mem_t = ctypes.c_void_p
_handle_t = ctypes.c_uint64
_mode_t = ctypes.c_uint


class _Stats(ctypes.Structure):
    """struct shmheap_stats, field for field."""

    _fields_ = [
        ("size", ctypes.c_uint64),
        ("used_bytes", ctypes.c_uint64),
        ("free_bytes", ctypes.c_uint64),
        ("largest_free", ctypes.c_uint64),
        ("used_blocks", ctypes.c_uint64),
        ("free_blocks", ctypes.c_uint64),
        ("format_version", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
        ("max_size", ctypes.c_uint64),
        ("names", ctypes.c_uint64),
    ]


class _Block(ctypes.Structure):
    """struct shmheap_block, field for field."""

    _fields_ = [
        ("offset", _handle_t),
        ("size", ctypes.c_uint64),
        ("used", ctypes.c_int),
        ("reserved", ctypes.c_uint32),
        ("handle", _handle_t),
        ("usable", ctypes.c_uint64),
    ]


class _Damage(ctypes.Structure):
    """struct shmheap_damage, field for field."""

    _fields_ = [("offset", ctypes.c_uint64), ("what", ctypes.c_char * 120)]


_WALK_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_Block), ctypes.c_void_p)
_NAMES_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, _handle_t, ctypes.c_void_p)


def _proto(name, restype, *argtypes):
    """The C function NAME of the library, with its result and argument
    types set so ctypes converts (and checks) every call."""
    fn = getattr(_lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn


_version_string = _proto("shmheap_version_string", ctypes.c_char_p)
_create = _proto("shmheap_create", _mem_t, ctypes.c_char_p, ctypes.c_size_t)
_create_mode = _proto(
    "shmheap_create_mode", _mem_t, ctypes.c_char_p, ctypes.c_size_t, _mode_t
)
_create_growable = _proto(
    "shmheap_create_growable",
    _mem_t,
    ctypes.c_char_p,
    ctypes.c_size_t,
    ctypes.c_size_t,
    _mode_t,
)
_grow = _proto("shmheap_grow", ctypes.c_int, _mem_t, ctypes.c_size_t)
_connect = _proto("shmheap_connect", _mem_t, ctypes.c_char_p)
_disconnect = _proto("shmheap_disconnect", None, _mem_t)
_destroy = _proto("shmheap_destroy", None, ctypes.c_char_p, _mem_t)
_alloc = _proto("shmheap_alloc", ctypes.c_void_p, _mem_t, ctypes.c_size_t)
_free = _proto("shmheap_free", None, _mem_t, ctypes.c_void_p)
_usable_size = _proto("shmheap_usable_size", ctypes.c_size_t, _mem_t, ctypes.c_void_p)
_ptr_to_handle = _proto("shmheap_ptr_to_handle", _handle_t, _mem_t, ctypes.c_void_p)
_handle_to_ptr = _proto("shmheap_handle_to_ptr", ctypes.c_void_p, _mem_t, _handle_t)
_check_detail = _proto(
    "shmheap_check_detail", ctypes.c_int, _mem_t, ctypes.POINTER(_Damage)
)
_stats = _proto("shmheap_stats", ctypes.c_int, _mem_t, ctypes.POINTER(_Stats))
_walk = _proto("shmheap_walk", ctypes.c_int, _mem_t, _WALK_FN, ctypes.c_void_p)
_publish = _proto("shmheap_publish", ctypes.c_int, _mem_t, ctypes.c_char_p, _handle_t)
_lookup = _proto("shmheap_lookup", _handle_t, _mem_t, ctypes.c_char_p)
_unpublish = _proto("shmheap_unpublish", ctypes.c_int, _mem_t, ctypes.c_char_p)
_lookup_or_alloc = _proto(
    "shmheap_lookup_or_alloc",
    ctypes.c_void_p,
    _mem_t,
    ctypes.c_char_p,
    ctypes.c_size_t,
    ctypes.POINTER(ctypes.c_int),
)
_names = _proto("shmheap_names", ctypes.c_int, _mem_t, _NAMES_FN, ctypes.c_void_p)


def library_version():
    """The version string of the libshmheap actually loaded, e.g. "0.2.0"."""
    return _version_string().decode()


def _raise(what=None, err=None):
    """Raises OSError for errno ERR (default: the errno of the last call).
    OSError's constructor picks the subclass (FileExistsError, ...)."""
    if err is None:
        err = ctypes.get_errno()
    if err == 0:
        # The library failed without saying why; never report success.
        err = _errno.EIO
    if what is None:
        raise OSError(err, os.strerror(err))
    raise OSError(err, os.strerror(err), what)


def _no_nul(raw, what):
    """RAW, unless it holds a NUL byte, where C would cut it short (ValueError,
    as os functions raise)."""
    if b"\0" in raw:
        raise ValueError("embedded null byte in %s" % what)
    return raw


def _name_bytes(name):
    """A heap name (str or bytes) as the bytes the C API takes."""
    if isinstance(name, str):
        return _no_nul(os.fsencode(name), "heap name")
    if isinstance(name, (bytes, bytearray)):
        return _no_nul(bytes(name), "heap name")
    raise TypeError("a heap name is str or bytes, not %s" % type(name).__name__)


def _key_bytes(key):
    """A names-directory key (str or bytes) as bytes (UTF-8 for str)."""
    if isinstance(key, str):
        return _no_nul(key.encode("utf-8", "surrogateescape"), "key")
    if isinstance(key, (bytes, bytearray)):
        return _no_nul(bytes(key), "key")
    raise TypeError("a key is str or bytes, not %s" % type(key).__name__)


def _size(n, what="size"):
    """N as an int the C API takes (0 .. 2**64 - 1), or TypeError,
    ValueError (negative) or OverflowError (too large). Any integer type
    does (numpy's too: handles read out of the heap come back as them)."""
    if isinstance(n, bool):
        raise TypeError("%s must be an int, not bool" % what)
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError("%s must be an int, not %s" % (what, type(n).__name__)) from None
    if n < 0:
        raise ValueError("%s must not be negative" % what)
    if n >= 1 << 64:
        raise OverflowError("%s does not fit in 64 bits" % what)
    return n


def destroy(name):
    """Removes the heap NAME (or any shared memory object of that name: this
    is how an operator removes a damaged heap). Processes that still map it
    keep using it until they disconnect. Raises OSError (ENOENT, EACCES,
    EINVAL) when the name could not be removed."""
    ctypes.set_errno(0)
    _destroy(_name_bytes(name), None)
    err = ctypes.get_errno()
    if err:
        _raise(name, err)


class Object:
    """An allocated object: its handle and a view of its bytes.

    Attributes:
        handle: the object's handle, an int valid in every process that
            connects to the heap (pass it to them; store it in the heap).
        view: a writable memoryview (format "B") of the object's bytes,
            zero-copy: writes land in the shared memory at once.
        size: the number of bytes in view.

    The view stays valid until the object is freed (by any process) or this
    process disconnects from the heap; touching it after that is the
    caller's risk (it may crash the process or read another object).
    """

    __slots__ = ("handle", "view", "size")

    def __init__(self, handle, view):
        """Internal: Heap.alloc and Heap.lookup_or_alloc make Objects."""
        self.handle = handle
        self.view = view
        self.size = len(view)

    def __repr__(self):
        """Handle and size, e.g. <shmheap.Object handle=80 size=16>."""
        return "<shmheap.Object handle=%d size=%d>" % (self.handle, self.size)


#: One block of the heap, as Heap.blocks() reports it: offset of its tag,
#: size in bytes (tag included), used (bool), handle (the object's handle
#: when used, else 0) and usable (bytes usable when used, else 0).
Block = collections.namedtuple("Block", "offset size used handle usable")


class Heap:
    """A connection of this process to one named heap.

    Make one with Heap.create(name, size) or Heap.connect(name); both work
    as context managers that disconnect on exit. Every method takes the
    heap's lock for the length of one C call and is safe to call from
    several threads and processes at once, except disconnect and destroy,
    which no other thread may race with.

    After disconnect() (or destroy(), or the end of a with block) every
    method raises ValueError; memoryviews taken earlier must not be touched
    any more (the memory is unmapped: that is the caller's risk, the binding
    cannot revoke a memoryview). A Heap that is garbage-collected
    disconnects, but not while a view it handed out is alive.
    """

    def __init__(self, mem, name):
        """Internal: use Heap.create or Heap.connect."""
        self._mem = mem
        self.name = name

    @classmethod
    def create(cls, name, size, mode=0o600, max_size=None):
        """Creates the heap NAME of SIZE bytes and connects to it.

        NAME is a POSIX shared memory name ("/jobs": a leading slash, no
        other). SIZE is a nonzero multiple of the page size; it is reserved
        in /dev/shm at once. MODE is the object's permission bits (0660 to
        share with a group; the umask does not apply). MAX_SIZE, when given,
        makes a growable heap that alloc grows in place up to MAX_SIZE
        bytes (see grow()).

        Raises OSError: EEXIST (the name is taken), EINVAL (bad name, SIZE
        or MODE, MAX_SIZE < SIZE), ENOSPC, EACCES, EMFILE, ENFILE, ENOMEM;
        ENOSYS for MAX_SIZE while the library lacks growable heaps.
        """
        raw = _name_bytes(name)
        size = _size(size)
        mode = _size(mode, "mode")
        if mode & ~0o777:
            # the C type would drop bits above 32 before the library sees them
            raise OSError(_errno.EINVAL, os.strerror(_errno.EINVAL), name)
        if max_size is not None:
            mem = _create_growable(raw, size, _size(max_size, "max_size"), mode)
        elif mode != 0o600:
            mem = _create_mode(raw, size, mode)
        else:
            mem = _create(raw, size)
        if not mem:
            _raise(name)
        return cls(mem, name)

    @classmethod
    def connect(cls, name):
        """Connects to the existing heap NAME, at an address of this
        process's own.

        Raises OSError: ENOENT (no such heap), EACCES, EINVAL (bad name, or
        not a shmheap), EPROTO (a heap of another format version or ABI),
        EAGAIN (its creator has not finished), EUCLEAN (damaged beyond
        repair), ENOMEM, EMFILE, ENFILE.
        """
        mem = _connect(_name_bytes(name))
        if not mem:
            _raise(name)
        return cls(mem, name)

    # ---------------------------------------------------------- lifetime

    def __enter__(self):
        """Returns the heap itself."""
        return self

    def __exit__(self, *exc):
        """Disconnects (if still connected); never swallows the exception."""
        self.disconnect()
        return False

    def __del__(self):
        """Disconnects a heap nobody refers to any more. Views hold a
        reference to their heap, so this runs only when no view is left:
        unmapping cannot pull memory from under one."""
        try:
            self.disconnect()
        except Exception:
            pass

    def __repr__(self):
        """The heap's name and whether it is still connected."""
        state = "connected" if self._mem else "disconnected"
        return "<shmheap.Heap %r %s>" % (self.name, state)

    @property
    def closed(self):
        """True once this process disconnected from the heap."""
        return not self._mem

    def _m(self):
        """The C memory handle; ValueError once disconnected."""
        mem = self._mem
        if not mem:
            raise ValueError("shmheap: the heap %r is disconnected" % (self.name,))
        return mem

    def disconnect(self):
        """Unmaps the heap from this process; it stays for the others.
        Idempotent. Views taken before must not be touched afterwards."""
        mem, self._mem = self._mem, None
        if mem:
            _disconnect(mem)

    def destroy(self):
        """Disconnects and removes the heap's name, so no new process can
        connect; processes that still map it keep using it. Raises OSError
        (ENOENT, EACCES, EINVAL) when the name could not be removed (the
        heap is disconnected either way)."""
        mem = self._m()
        self._mem = None
        ctypes.set_errno(0)
        _destroy(None, mem)
        err = ctypes.get_errno()
        if err:
            _raise(self.name, err)

    # ------------------------------------------------------------ objects

    def _view(self, ptr, n):
        """A writable memoryview of the N bytes at address PTR; the ctypes
        array under it keeps this heap alive while the view lives."""
        arr = (ctypes.c_ubyte * n).from_address(ptr)
        arr._shmheap = self
        return memoryview(arr).cast("B")

    def _ptr(self, mem, obj_or_handle):
        """The address in this process of an Object or a handle, or
        OSError EINVAL for a handle outside the heap."""
        handle = obj_or_handle.handle if isinstance(obj_or_handle, Object) else obj_or_handle
        handle = _size(handle, "handle")
        ptr = _handle_to_ptr(mem, handle) if handle else None
        if not ptr:
            _raise(None, _errno.EINVAL)
        return ptr

    def alloc(self, n):
        """Allocates N bytes (16-byte aligned, first fit) and returns an
        Object with its handle and a view of exactly N bytes.

        Raises OSError: ENOMEM (nothing fits), EUCLEAN (damaged heap).
        Cost: O(log n) in the number of free blocks.
        """
        mem = self._m()
        n = _size(n)
        ptr = _alloc(mem, n)
        if not ptr:
            _raise()
        return Object(_ptr_to_handle(mem, ptr), self._view(ptr, n))

    def view(self, handle, n):
        """A writable, zero-copy memoryview of the first N bytes of the live
        object named by HANDLE (the handle alloc gave, in any process).

        Raises OSError EINVAL when HANDLE is not the start of a live object
        or N is more than the object holds (usable_size): the view never
        reaches past the object.
        """
        mem = self._m()
        n = _size(n)
        ptr = self._ptr(mem, handle)
        ctypes.set_errno(0)
        usable = _usable_size(mem, ptr)
        if usable == 0:
            _raise()
        if n > usable:
            _raise(None, _errno.EINVAL)
        return self._view(ptr, n)

    def free(self, obj_or_handle):
        """Frees an object (an Object or its handle). A handle that is not
        the start of a live object (a double free, an interior handle) is
        refused and the heap is unchanged.

        Raises OSError: EINVAL (not a live object), EUCLEAN (damaged tag).
        Views of the object must not be used afterwards.
        """
        mem = self._m()
        ptr = self._ptr(mem, obj_or_handle)
        ctypes.set_errno(0)
        _free(mem, ptr)
        err = ctypes.get_errno()
        if err:
            _raise(None, err)

    def usable_size(self, obj_or_handle):
        """The bytes usable in an object (at least what alloc was asked
        for). Raises OSError EINVAL when it is not a live object."""
        mem = self._m()
        ptr = self._ptr(mem, obj_or_handle)
        ctypes.set_errno(0)
        n = _usable_size(mem, ptr)
        if n == 0:
            _raise()
        return n

    # ------------------------------------------------------------- growth

    def grow(self, new_size):
        """Grows a heap made with max_size to NEW_SIZE bytes (a page
        multiple, at most max_size) in place: no object moves. A NEW_SIZE
        at or below the current size changes nothing.

        Raises OSError: EINVAL (not growable, NEW_SIZE not a page multiple
        or above max_size), ENOSPC, EUCLEAN; ENOSYS while the library lacks
        growable heaps.
        """
        mem = self._m()
        if _grow(mem, _size(new_size)) != 0:
            _raise()

    # ---------------------------------------------------------- integrity

    def check(self):
        """Checks every boundary tag and the free index. Returns None when
        the heap is consistent; raises OSError EUCLEAN naming the offset and
        the first inconsistency otherwise. Cost: O(n) in the blocks."""
        mem = self._m()
        damage = _Damage()
        if _check_detail(mem, ctypes.byref(damage)) != 0:
            err = ctypes.get_errno()
            if err == _errno.EUCLEAN:
                raise OSError(
                    err,
                    "%s: at offset %d: %s"
                    % (os.strerror(err), damage.offset, damage.what.decode(errors="replace")),
                )
            _raise(None, err)

    def stats(self):
        """The heap's figures, taken under its lock, as a dict with every
        field of struct shmheap_stats: size, used_bytes, free_bytes,
        largest_free, used_blocks, free_blocks, format_version, reserved,
        max_size, names. Raises OSError EUCLEAN. Cost: O(n) in the blocks.
        """
        mem = self._m()
        st = _Stats()
        if _stats(mem, ctypes.byref(st)) != 0:
            _raise()
        return {name: getattr(st, name) for name, _ in _Stats._fields_}

    def blocks(self):
        """Every block of the heap in address order, as a list of Block
        tuples (offset, size, used, handle, usable), read under the lock in
        one pass. Raises OSError EUCLEAN. Cost: O(n) in the blocks."""
        mem = self._m()
        out = []

        def each(block, _arg):
            """Copies one block out (the C struct lives only for the call)."""
            b = block.contents
            out.append(Block(b.offset, b.size, bool(b.used), b.handle, b.usable))
            return 0

        rc = _walk(mem, _WALK_FN(each), None)
        if rc == -1:
            _raise()
        return out

    def walk(self):
        """An iterator over blocks() (the list is read first, under the
        lock, so the loop body may call into the heap)."""
        return iter(self.blocks())

    # -------------------------------------------------------------- names

    def publish(self, key, obj_or_handle):
        """Publishes an object (an Object or its handle) under KEY (str or
        bytes, 1..255 bytes), so other processes find it with lookup(KEY).

        Raises OSError: EEXIST (KEY is taken), EINVAL (bad KEY, not a live
        object), ENOMEM, EUCLEAN; ENOSYS while the library lacks names.
        """
        mem = self._m()
        handle = obj_or_handle.handle if isinstance(obj_or_handle, Object) else obj_or_handle
        if _publish(mem, _key_bytes(key), _size(handle, "handle")) != 0:
            _raise(key)

    def lookup(self, key):
        """The handle published under KEY. Raises OSError: ENOENT
        (FileNotFoundError: no such name), EINVAL (bad KEY), EUCLEAN;
        ENOSYS while the library lacks names."""
        mem = self._m()
        handle = _lookup(mem, _key_bytes(key))
        if handle == NULL_HANDLE:
            _raise(key)
        return handle

    def unpublish(self, key):
        """Removes the name KEY; the object stays allocated. Raises OSError
        ENOENT, EINVAL, EUCLEAN; ENOSYS while the library lacks names."""
        mem = self._m()
        if _unpublish(mem, _key_bytes(key)) != 0:
            _raise(key)

    def lookup_or_alloc(self, key, n):
        """Atomically: the object named KEY, or N new zeroed bytes published
        under KEY. Returns (Object, created): racing processes get the same
        object and exactly one of them sees created True. The Object's view
        covers N bytes, or all of an existing object that holds fewer.

        Raises OSError: EINVAL, ENOMEM, EUCLEAN (nothing is created then);
        ENOSYS while the library lacks names.
        """
        mem = self._m()
        n = _size(n)
        created = ctypes.c_int(0)
        ptr = _lookup_or_alloc(mem, _key_bytes(key), n, ctypes.byref(created))
        if not ptr:
            _raise(key)
        usable = _usable_size(mem, ptr)
        view = self._view(ptr, min(n, usable) if usable else n)
        return Object(_ptr_to_handle(mem, ptr), view), bool(created.value)

    def names(self):
        """An iterator of (key, handle) over every published name, read
        under the lock in one pass; keys are str (UTF-8; other bytes come
        back as surrogate escapes). Raises OSError EUCLEAN; ENOSYS while the
        library lacks names."""
        mem = self._m()
        out = []

        def each(key, handle, _arg):
            """Copies one name out (the key lives only for the call)."""
            out.append((key.decode("utf-8", "surrogateescape"), handle))
            return 0

        if _names(mem, _NAMES_FN(each), None) == -1:
            _raise()
        return iter(out)
