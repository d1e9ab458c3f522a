/*
 * device.c - a Python object as a Spd device: the operations the unit
 * core calls, each of which takes the GIL, calls the device's method and
 * turns its answer or its exception into a result; and the Request that
 * an asynchronous device completes later, from any thread.
 *
 * The device's methods (docs/python.md):
 *   read(lba, count) -> bytes-like     or readinto(lba, buf), buf a
 *                                      writable memoryview over the core's
 *                                      buffer: no copy at all
 *   write(lba, buf, fua)               buf a read-only memoryview over the
 *                                      core's buffer (valid in the call)
 *   flush()
 *   unmap(ranges)                      a list of (lba, count)
 *   extents(lba, count) -> (count, mapped)
 * With asynchronous = True, read, write, flush and unmap get a Request
 * first and answer through its complete().
 *
 * Errors: SenseError gives its sense, an OSError its errno (mapped to
 * sense by the core, once, as for every device), anything else is logged
 * with its traceback and answered as a MEDIUM ERROR (-EIO).
 */
#include <errno.h>
#include <pthread.h>

#include "spdpy.h"

PyObject *spdpy_sense_error;
PyObject *spdpy_log;

static const char *op_name(spd_op op)
{
    switch (op) {
    case SPD_OP_READ:       return "read";
    case SPD_OP_WRITE:
    case SPD_OP_WRITE_SAME: return "write";
    case SPD_OP_FLUSH:      return "flush";
    case SPD_OP_UNMAP:      return "unmap";
    default:                return "extents";
    }
}

/* ------------------------------------------------------------------ */
/* The GIL on the core's threads                                       */
/* ------------------------------------------------------------------ */

/*
 * PyGILState_Ensure() on a thread Python does not know makes a thread
 * state and PyGILState_Release() frees it again: on every call, with an
 * mmap() and munmap() of its frame stack, whose TLB shootdowns cost more
 * than the call itself. So a thread of the core (an NBD connection, a
 * dispatcher, a FUSE worker) keeps the thread state of its first call
 * (one Ensure never released) until it exits, and each call after that
 * only takes and gives back the GIL.
 */
static pthread_key_t kept_key;
static pthread_once_t kept_once = PTHREAD_ONCE_INIT;
static __thread PyThreadState *kept;

/* The thread exits: its thread state goes, unless Python has gone. */
static void kept_free(void *ts)
{
    if (!Py_IsInitialized() || _Py_IsFinalizing())
        return;
    PyEval_RestoreThread(ts);
    PyThreadState_Clear(ts);
    PyThreadState_DeleteCurrent();
}

static void kept_init(void)
{
    pthread_key_create(&kept_key, kept_free);
}

static PyGILState_STATE gil_take(void)
{
    if (!kept && !PyGILState_GetThisThreadState()) {
        pthread_once(&kept_once, kept_init);
        PyGILState_Ensure();
        kept = PyEval_SaveThread();
        pthread_setspecific(kept_key, kept);
    }
    return PyGILState_Ensure();
}

static void gil_give(PyGILState_STATE state)
{
    PyGILState_Release(state);
}

/* ------------------------------------------------------------------ */
/* Exceptions to results                                               */
/* ------------------------------------------------------------------ */

/* An int attribute of obj within [0, max]; None or missing gives -1. */
static long long int_attr(PyObject *obj, const char *name,
                          unsigned long long max)
{
    PyObject *v = PyObject_GetAttrString(obj, name);
    long long r = -1;
    if (v && PyLong_Check(v)) {
        unsigned long long u = PyLong_AsUnsignedLongLong(v);
        if (!PyErr_Occurred() && u <= max)
            r = (long long)u;
    }
    Py_XDECREF(v);
    PyErr_Clear();
    return r;
}

/* A SenseError's sense into io: SPD_CHECK, or 0 when its fields are not
 * a sense key, ASC and ASCQ. */
static int sense_result(spd_io *io, PyObject *exc)
{
    long long key = int_attr(exc, "key", 0xf), asc = int_attr(exc, "asc", 0xff),
              ascq = int_attr(exc, "ascq", 0xff);
    long long info = int_attr(exc, "information", UINT64_MAX);
    if (!io || key < 0 || asc < 0 || ascq < 0)
        return 0;
    return spd_io_set_sense(io, (uint8_t)key, (uint8_t)asc, (uint8_t)ascq,
                            info >= 0, info >= 0 ? (uint64_t)info : 0);
}

/* outcome: what the request got, for the log line. */
static void log_exception(struct pydev *d, spd_op op, uint64_t lba,
                          uint64_t count, PyObject *exc, const char *outcome)
{
    PyObject *r = spdpy_log ? PyObject_CallFunction(spdpy_log, "OsKKOs",
                                  d->device, op_name(op),
                                  (unsigned long long)lba,
                                  (unsigned long long)count, exc, outcome)
                            : NULL;
    if (!r) {
        if (!PyErr_Occurred())
            PyErr_SetObject(PyExceptionInstance_Class(exc), exc);
        PyErr_WriteUnraisable(d->device);
    }
    Py_XDECREF(r);
}

/* The result for the exception now raised, which this clears: a
 * SenseError's sense (SPD_CHECK, with io), an OSError's -errno, or else
 * -EIO (MEDIUM ERROR) with the exception and its traceback logged. */
static int exception_result(struct pydev *d, spd_io *io, spd_op op,
                            uint64_t lba, uint64_t count)
{
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    if (tb && exc)
        PyException_SetTraceback(exc, tb);
    int r = 0;
    long long err;
    if (exc && spdpy_sense_error &&
        PyObject_IsInstance(exc, spdpy_sense_error) == 1)
        r = sense_result(io, exc);
    else if (exc && PyObject_IsInstance(exc, PyExc_OSError) == 1 &&
             (err = int_attr(exc, "errno", 4095)) > 0)
        r = (int)-err;
    PyErr_Clear();
    if (!r) {
        if (exc)
            log_exception(d, op, lba, count, exc,
                          op == SPD_OP_EXTENTS ? "answered EIO"
                                               : "answered MEDIUM ERROR");
        r = -EIO;
    }
    Py_XDECREF(type);
    Py_XDECREF(exc);
    Py_XDECREF(tb);
    return r;
}

/* ------------------------------------------------------------------ */
/* Calls                                                               */
/* ------------------------------------------------------------------ */

/* Call method with args, whose references this takes (a NULL among them
 * is a failed conversion: its exception stays set). */
static PyObject *call(PyObject *method, PyObject **args, size_t nargs)
{
    PyObject *res = NULL;
    size_t i = 0;
    while (i < nargs && args[i])
        i++;
    if (i == nargs)
        res = PyObject_Vectorcall(method, args, nargs, NULL);
    for (i = 0; i < nargs; i++)
        Py_XDECREF(args[i]);
    return res;
}

/* A memoryview over the core's buffer, for the length of a call. */
static PyObject *view_of(void *buf, size_t len, bool writable)
{
    return PyMemoryView_FromMemory(buf, (Py_ssize_t)len,
                                   writable ? PyBUF_WRITE : PyBUF_READ);
}

/* The core's buffer goes away: a device that kept the view finds it
 * released (one that kept a slice of it is warned against in the docs). */
static void view_release(PyObject *view)
{
    if (!view)
        return;
    PyObject *type, *exc, *tb;          /* the device's exception, if any */
    PyErr_Fetch(&type, &exc, &tb);
    PyObject *r = PyObject_CallMethod(view, "release", NULL);
    Py_XDECREF(r);
    PyErr_Clear();
    PyErr_Restore(type, exc, tb);
    Py_DECREF(view);
}

/* Copy a read's answer into the core's buffer: 0, or -1 with ValueError
 * when it is not len bytes. */
static int fill(void *buf, size_t len, PyObject *data)
{
    Py_buffer v;
    if (PyObject_GetBuffer(data, &v, PyBUF_SIMPLE))
        return -1;
    int r = 0;
    if ((size_t)v.len == len) {
        memcpy(buf, v.buf, len);
    } else {
        PyErr_Format(PyExc_ValueError, "read answered %zd bytes where %zu "
                     "were asked for", v.len, len);
        r = -1;
    }
    PyBuffer_Release(&v);
    return r;
}

static PyObject *ranges_of(const spd_unmap_desc *descs, uint32_t count)
{
    PyObject *list = PyList_New(count);
    for (uint32_t i = 0; list && i < count; i++) {
        PyObject *t = Py_BuildValue("(KI)", (unsigned long long)descs[i].lba,
                                    (unsigned)descs[i].blocks);
        if (!t) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, t);
    }
    return list;
}

/* ------------------------------------------------------------------ */
/* Requests of asynchronous devices                                    */
/* ------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    spd_io *io;              /* NULL once completed */
    struct pydev *dev;       /* valid while io is: the unit waits for it */
    spd_op op;
    uint64_t lba;
    uint32_t blocks;
    bool fua;
    void *buf;
    size_t len;
    PyObject *view;          /* memoryview over buf, made when asked for */
    PyObject *ranges;        /* unmap's */
    /* The device's method is running: a completion now only records the
     * result, which the operation returns (completing an io inside the
     * device call would run its continuation under the core's locks). */
    bool in_call;
    int result;
} Request;

/* Give the io its result; the request is done. */
static void request_finish(Request *req, int result)
{
    spd_io *io = req->io;
    req->io = NULL;
    view_release(req->view);
    req->view = NULL;
    if (req->in_call) {
        req->result = result;
        return;
    }
    Py_BEGIN_ALLOW_THREADS
    spd_io_complete(io, result);
    Py_END_ALLOW_THREADS
}

static PyObject *request_complete(Request *req, PyObject *args)
{
    PyObject *value = Py_None;
    if (!PyArg_ParseTuple(args, "|O:complete", &value))
        return NULL;
    if (!req->io) {
        PyErr_SetString(PyExc_RuntimeError, "the request is already complete");
        return NULL;
    }
    int r = SPD_OK;
    if (PyExceptionInstance_Check(value)) {
        PyErr_SetObject(PyExceptionInstance_Class(value), value);
        r = exception_result(req->dev, req->io, req->op, req->lba, req->blocks);
    } else if (value != Py_None && req->op == SPD_OP_READ &&
               fill(req->buf, req->len, value)) {
        r = exception_result(req->dev, req->io, req->op, req->lba, req->blocks);
    }
    request_finish(req, r);
    Py_RETURN_NONE;
}

static void request_dealloc(Request *req)
{
    if (req->io) {
        PyErr_SetString(PyExc_RuntimeError, "a request was dropped without "
                        "complete()");
        request_finish(req, exception_result(req->dev, req->io, req->op,
                                             req->lba, req->blocks));
    }
    Py_XDECREF(req->ranges);
    Py_TYPE(req)->tp_free((PyObject *)req);
}

static PyObject *request_get_buf(Request *req, void *closure)
{
    if (!req->io || !req->buf)
        Py_RETURN_NONE;
    if (!req->view &&
        !(req->view = view_of(req->buf, req->len, req->op == SPD_OP_READ)))
        return NULL;
    Py_INCREF(req->view);
    return req->view;
}

static PyObject *request_get_op(Request *req, void *closure)
{
    return PyUnicode_FromString(op_name(req->op));
}

static PyObject *request_get_done(Request *req, void *closure)
{
    return PyBool_FromLong(!req->io);
}

static PyObject *request_get_ranges(Request *req, void *closure)
{
    PyObject *r = req->ranges ? req->ranges : Py_None;
    Py_INCREF(r);
    return r;
}

static PyObject *request_repr(Request *req)
{
    return PyUnicode_FromFormat("<spd.Request %s lba=%llu count=%u%s>",
                                op_name(req->op),
                                (unsigned long long)req->lba, req->blocks,
                                req->io ? "" : " done");
}

static PyMethodDef request_methods[] = {
    { "complete", (PyCFunction)request_complete, METH_VARARGS,
      "complete(result=None): finish the request, from any thread. result "
      "is None (success), for a read the data (bytes-like, count blocks; "
      "or None after filling buf), or an exception: SenseError, "
      "OSError(errno), or any other (logged, MEDIUM ERROR)." },
    { NULL }
};

static PyMemberDef request_members[] = {
    { "lba", T_ULONGLONG, offsetof(Request, lba), READONLY, "first block" },
    { "count", T_UINT, offsetof(Request, blocks), READONLY, "blocks" },
    { "fua", T_BOOL, offsetof(Request, fua), READONLY,
      "write: the data must be stable before completion" },
    { NULL }
};

static PyGetSetDef request_getset[] = {
    { "op", (getter)request_get_op, NULL, "read, write, flush or unmap", NULL },
    { "buf", (getter)request_get_buf, NULL, "read: a writable memoryview to "
      "fill; write: a read-only one with the data; valid until complete()",
      NULL },
    { "done", (getter)request_get_done, NULL, "complete() was called", NULL },
    { "ranges", (getter)request_get_ranges, NULL, "unmap: list of (lba, "
      "count)", NULL },
    { NULL }
};

PyTypeObject spdpy_request_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "spd.Request",
    .tp_doc = "A request an asynchronous device answers with complete().",
    .tp_basicsize = sizeof(Request),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)request_dealloc,
    .tp_repr = (reprfunc)request_repr,
    .tp_methods = request_methods,
    .tp_members = request_members,
    .tp_getset = request_getset,
};

/* Log the exception now raised (and clear it): a method that failed after
 * completing its request, which keeps the answer it was given. */
static void log_raised(struct pydev *d, spd_op op, uint64_t lba,
                       uint32_t blocks)
{
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    if (tb && exc)
        PyException_SetTraceback(exc, tb);
    if (exc)
        log_exception(d, op, lba, blocks, exc, "after complete(): the "
                      "request keeps its answer");
    Py_XDECREF(type);
    Py_XDECREF(exc);
    Py_XDECREF(tb);
}

/* Hand the io to the device's method as a Request: SPD_PENDING, or the
 * result when the method completed it (or failed) before returning. */
static int async_call(struct pydev *d, PyObject *method, spd_io *io,
                      spd_op op, void *buf, size_t len, uint64_t lba,
                      uint32_t blocks, bool fua, PyObject *ranges)
{
    Request *req = PyObject_New(Request, &spdpy_request_type);
    if (!req) {
        Py_XDECREF(ranges);
        return exception_result(d, io, op, lba, blocks);
    }
    *req = (Request){ .ob_base = req->ob_base, .io = io, .dev = d, .op = op,
                      .lba = lba, .blocks = blocks, .fua = fua, .buf = buf,
                      .len = len, .ranges = ranges, .in_call = true };
    PyObject *args[4] = { (PyObject *)req };
    size_t n = 1;
    Py_INCREF(req);
    if (op == SPD_OP_READ) {
        args[n++] = PyLong_FromUnsignedLongLong(lba);
        args[n++] = PyLong_FromUnsignedLong(blocks);
    } else if (op == SPD_OP_WRITE) {
        args[n++] = PyLong_FromUnsignedLongLong(lba);
        args[n++] = request_get_buf(req, NULL);
        args[n++] = PyBool_FromLong(fua);
    } else if (op == SPD_OP_UNMAP) {
        Py_INCREF(ranges);
        args[n++] = ranges;
    }
    PyObject *res = call(method, args, n);
    if (!res && req->io)                  /* failed: the request with it */
        request_finish(req, exception_result(d, io, op, lba, blocks));
    else if (!res)                        /* failed after completing */
        log_raised(d, op, lba, blocks);
    Py_XDECREF(res);
    /* Completions from now on reach the core themselves. */
    req->in_call = false;
    int r = req->io ? SPD_PENDING : req->result;
    Py_DECREF(req);
    return r;
}

/* ------------------------------------------------------------------ */
/* The operations                                                      */
/* ------------------------------------------------------------------ */

static int read_op(struct pydev *d, spd_io *io, void *buf, size_t len,
                   uint64_t lba, uint32_t blocks)
{
    PyObject *res;
    if (d->async)
        return async_call(d, d->read ? d->read : d->readinto, io, SPD_OP_READ,
                          buf, len, lba, blocks, false, NULL);
    if (d->readinto) {
        PyObject *view = view_of(buf, len, true);
        PyObject *args[2] = { PyLong_FromUnsignedLongLong(lba), view };
        Py_XINCREF(view);
        res = call(d->readinto, args, 2);
        view_release(view);
    } else {
        PyObject *args[2] = { PyLong_FromUnsignedLongLong(lba),
                              PyLong_FromUnsignedLong(blocks) };
        res = call(d->read, args, 2);
        if (res && fill(buf, len, res))
            Py_CLEAR(res);
    }
    if (!res)
        return exception_result(d, io, SPD_OP_READ, lba, blocks);
    Py_DECREF(res);
    return SPD_OK;
}

static int pydev_read(void *ctx, spd_io *io, void *buf, uint64_t lba,
                      uint32_t blocks, bool fua)
{
    struct pydev *d = ctx;
    PyGILState_STATE g = gil_take();
    int r = read_op(d, io, buf, (size_t)blocks * d->block_length, lba, blocks);
    gil_give(g);
    return r;
}

static int pydev_write(void *ctx, spd_io *io, const void *buf, uint64_t lba,
                       uint32_t blocks, bool fua)
{
    struct pydev *d = ctx;
    size_t len = (size_t)blocks * d->block_length;
    int r = SPD_OK;
    PyGILState_STATE g = gil_take();
    if (d->async) {
        r = async_call(d, d->write, io, SPD_OP_WRITE, (void *)buf, len, lba,
                       blocks, fua, NULL);
    } else {
        PyObject *view = view_of((void *)buf, len, false);
        PyObject *args[3] = { PyLong_FromUnsignedLongLong(lba), view,
                              PyBool_FromLong(fua) };
        Py_XINCREF(view);
        PyObject *res = call(d->write, args, 3);
        view_release(view);
        if (!res)
            r = exception_result(d, io, SPD_OP_WRITE, lba, blocks);
        Py_XDECREF(res);
    }
    gil_give(g);
    return r;
}

static int pydev_flush(void *ctx, spd_io *io, uint64_t lba, uint32_t blocks)
{
    struct pydev *d = ctx;
    int r = SPD_OK;
    PyGILState_STATE g = gil_take();
    if (d->async) {
        r = async_call(d, d->flush, io, SPD_OP_FLUSH, NULL, 0, lba, blocks,
                       false, NULL);
    } else {
        PyObject *res = PyObject_CallNoArgs(d->flush);
        if (!res)
            r = exception_result(d, io, SPD_OP_FLUSH, lba, blocks);
        Py_XDECREF(res);
    }
    gil_give(g);
    return r;
}

static int pydev_unmap(void *ctx, spd_io *io, const spd_unmap_desc *descs,
                       uint32_t count)
{
    struct pydev *d = ctx;
    int r = SPD_OK;
    PyGILState_STATE g = gil_take();
    PyObject *ranges = ranges_of(descs, count);
    uint64_t lba = count ? descs[0].lba : 0;
    if (!ranges) {
        r = exception_result(d, io, SPD_OP_UNMAP, lba, count);
    } else if (d->async) {
        r = async_call(d, d->unmap, io, SPD_OP_UNMAP, NULL, 0, lba, count,
                       false, ranges);
    } else {
        PyObject *args[1] = { ranges };
        PyObject *res = call(d->unmap, args, 1);
        if (!res)
            r = exception_result(d, io, SPD_OP_UNMAP, lba, count);
        Py_XDECREF(res);
    }
    gil_give(g);
    return r;
}

/* extents(lba, count) -> (blocks, mapped), blocks from 1 to count. */
static int64_t pydev_extent(void *ctx, uint64_t lba, uint32_t blocks,
                            bool *mapped)
{
    struct pydev *d = ctx;
    int64_t r = -EIO;
    PyGILState_STATE g = gil_take();
    PyObject *args[2] = { PyLong_FromUnsignedLongLong(lba),
                          PyLong_FromUnsignedLong(blocks) };
    PyObject *res = call(d->extents, args, 2);
    unsigned long long n = 0;
    int m = 0;
    if (res && !PyArg_ParseTuple(res, "Kp;extents() answers (count, mapped)",
                                 &n, &m))
        Py_CLEAR(res);
    if (res && (n < 1 || n > blocks)) {
        PyErr_Format(PyExc_ValueError, "extents() answered %llu blocks, not "
                     "1 to %u", n, blocks);
        Py_CLEAR(res);
    }
    if (res) {
        *mapped = m;
        r = (int64_t)n;
    } else {
        r = exception_result(d, NULL, SPD_OP_EXTENTS, lba, blocks);
    }
    Py_XDECREF(res);
    gil_give(g);
    return r;
}

/* ------------------------------------------------------------------ */
/* Setting up                                                          */
/* ------------------------------------------------------------------ */

static PyObject *method(PyObject *device, const char *name)
{
    PyObject *m = PyObject_GetAttrString(device, name);
    if (m && !PyCallable_Check(m))
        Py_CLEAR(m);
    if (!m)
        PyErr_Clear();
    return m;
}

static bool flag(PyObject *device, const char *name)
{
    PyObject *v = PyObject_GetAttrString(device, name);
    int r = v ? PyObject_IsTrue(v) : 0;
    Py_XDECREF(v);
    PyErr_Clear();
    return r == 1;
}

int pydev_init(struct pydev *d, PyObject *device, uint32_t block_length)
{
    *d = (struct pydev){ .device = device, .block_length = block_length,
                         .read = method(device, "read"),
                         .readinto = method(device, "readinto"),
                         .write = method(device, "write"),
                         .flush = method(device, "flush"),
                         .unmap = method(device, "unmap"),
                         .extents = method(device, "extents"),
                         .async = flag(device, "asynchronous") };
    Py_INCREF(device);
    if (!d->read && !d->readinto) {
        PyErr_Format(PyExc_TypeError, "the device (%R) has neither read() "
                     "nor readinto()", device);
        pydev_clear(d);
        return -1;
    }
    d->ops = (spd_ops){ SPD_OPS_INIT,
        .flags = (flag(device, "thread_safe") ? SPD_OPS_PARALLEL : 0) |
                 (flag(device, "native_fua") ? SPD_OPS_FUA : 0),
        .read = pydev_read,
        .write = d->write ? pydev_write : NULL,
        .flush = d->flush ? pydev_flush : NULL,
        .unmap = d->unmap ? pydev_unmap : NULL,
        .extent = d->extents ? pydev_extent : NULL };
    return 0;
}

void pydev_ops_all(spd_ops *ops)
{
    *ops = (spd_ops){ SPD_OPS_INIT, .read = pydev_read, .write = pydev_write,
                      .flush = pydev_flush, .unmap = pydev_unmap,
                      .extent = pydev_extent };
}

void pydev_clear(struct pydev *d)
{
    Py_CLEAR(d->device);
    Py_CLEAR(d->read);
    Py_CLEAR(d->readinto);
    Py_CLEAR(d->write);
    Py_CLEAR(d->flush);
    Py_CLEAR(d->unmap);
    Py_CLEAR(d->extents);
}

int pydev_traverse(struct pydev *d, visitproc visit, void *arg)
{
    Py_VISIT(d->device);
    Py_VISIT(d->read);
    Py_VISIT(d->readinto);
    Py_VISIT(d->write);
    Py_VISIT(d->flush);
    Py_VISIT(d->unmap);
    Py_VISIT(d->extents);
    return 0;
}
