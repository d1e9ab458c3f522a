/*
 * unit.c - spd.Unit, a storage unit served by a Python device, and
 * spd.Export, one of its exports (NBD, iSCSI, FUSE, ublk).
 *
 * Lifetimes: a unit holds its open exports and closes them before
 * itself, so the C unit always outlives the C exports, as the export API
 * requires. Calls that use the C unit without the GIL hold the unit's lock
 * shared (and may take the GIL while holding it); close() takes it
 * exclusive, never with the GIL held, so a unit is never freed under
 * another thread's pread() or serve_fuse(). Every unit still open when the
 * interpreter exits is closed first (close_all(), from atexit), while the
 * threads the exports call the device from can still take the GIL.
 */
#include <errno.h>
#include <pthread.h>

#include "spdpy.h"
#include "spd/fuse.h"
#include "spd/iscsi.h"
#include "spd/nbd.h"
#include "spd/ublk.h"

typedef struct Export Export;

typedef struct Unit {
    PyObject_HEAD
    spd_unit *unit;              /* NULL once closing: written under lock */
    pthread_rwlock_t lock;       /* shared: a call using unit; exclusive: close */
    bool open;                   /* with the GIL: created, close() not begun */
    spd_params params;           /* a copy, for the attributes */
    struct pydev dev;
    Export *exports;             /* open exports, each a reference */
    struct Unit *next_open, **prev_open;
} Unit;

enum export_kind { EXPORT_NBD, EXPORT_ISCSI, EXPORT_FUSE, EXPORT_UBLK };

struct Export {
    PyObject_HEAD
    Unit *unit;                  /* while open (the unit holds us), else NULL */
    enum export_kind kind;
    void *handle;
    PyObject *uris;              /* tuple of str */
    Export *next;
};

static Unit *open_units;

PyObject *spdpy_os_error(int err)
{
    PyObject *args = Py_BuildValue("(is)", err, spd_errmsg());
    if (args) {
        PyErr_SetObject(err == EINVAL ? PyExc_ValueError : PyExc_OSError,
                        args);
        Py_DECREF(args);
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Using the C unit without the GIL                                    */
/* ------------------------------------------------------------------ */

/* Hold the unit for a call made without the GIL (the GIL is released
 * already; it may be taken again while held): the C unit, or NULL when
 * closed (the lock then not held). */
static spd_unit *unit_hold(Unit *u)
{
    pthread_rwlock_rdlock(&u->lock);
    if (u->unit)
        return u->unit;
    pthread_rwlock_unlock(&u->lock);
    return NULL;
}

static void unit_unhold(Unit *u)
{
    pthread_rwlock_unlock(&u->lock);
}

static PyObject *closed_error(void)
{
    PyErr_SetString(PyExc_ValueError, "the unit is closed");
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Exports                                                             */
/* ------------------------------------------------------------------ */

static void export_stop(enum export_kind kind, void *handle)
{
    switch (kind) {
    case EXPORT_NBD:   spd_nbd_server_destroy(handle); break;
    case EXPORT_ISCSI: spd_iscsi_target_destroy(handle); break;
    case EXPORT_FUSE:  spd_fuse_export_destroy(handle); break;
    case EXPORT_UBLK:  spd_ublk_export_destroy(handle); break;
    }
}

/* Stop the export (its requests in flight answered first) and let go of
 * the unit. */
static void export_close(Export *e)
{
    Unit *u = e->unit;
    if (!u)
        return;
    void *handle = e->handle;
    e->handle = NULL;
    e->unit = NULL;
    for (Export **p = &u->exports; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            break;
        }
    Py_BEGIN_ALLOW_THREADS
    export_stop(e->kind, handle);
    Py_END_ALLOW_THREADS
    Py_DECREF(e);                   /* the unit's reference */
}

static PyObject *export_close_py(Export *e, PyObject *unused)
{
    export_close(e);
    Py_RETURN_NONE;
}

static PyObject *export_enter(Export *e, PyObject *unused)
{
    Py_INCREF(e);
    return (PyObject *)e;
}

static PyObject *export_exit(Export *e, PyObject *args)
{
    export_close(e);
    Py_RETURN_FALSE;
}

static void export_dealloc(Export *e)
{
    export_close(e);
    Py_XDECREF(e->uris);
    Py_TYPE(e)->tp_free((PyObject *)e);
}

static PyObject *export_get_closed(Export *e, void *closure)
{
    return PyBool_FromLong(!e->unit);
}

static PyObject *export_get_kind(Export *e, void *closure)
{
    static const char *const names[] = { "nbd", "iscsi", "fuse", "ublk" };
    return PyUnicode_FromString(names[e->kind]);
}

static PyObject *export_repr(Export *e)
{
    return PyUnicode_FromFormat("<spd.Export %s %R%s>",
                                (const char *[]){ "nbd", "iscsi", "fuse",
                                                  "ublk" }[e->kind],
                                e->uris, e->unit ? "" : " closed");
}

static PyMethodDef export_methods[] = {
    { "close", (PyCFunction)export_close_py, METH_NOARGS,
      "Stop serving: requests in flight are answered first." },
    { "__enter__", (PyCFunction)export_enter, METH_NOARGS, NULL },
    { "__exit__", (PyCFunction)export_exit, METH_VARARGS, NULL },
    { NULL }
};

static PyMemberDef export_members[] = {
    { "uris", T_OBJECT, offsetof(Export, uris), READONLY,
      "where clients find the disk: URIs with the real port, the FUSE "
      "file, /dev/ublkbN" },
    { NULL }
};

static PyGetSetDef export_getset[] = {
    { "closed", (getter)export_get_closed, NULL, NULL, NULL },
    { "kind", (getter)export_get_kind, NULL, "nbd, iscsi, fuse or ublk",
      NULL },
    { NULL }
};

PyTypeObject spdpy_export_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "spd.Export",
    .tp_doc = "A unit's export, made by Unit.serve_*(); close() stops it.",
    .tp_basicsize = sizeof(Export),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)export_dealloc,
    .tp_repr = (reprfunc)export_repr,
    .tp_methods = export_methods,
    .tp_members = export_members,
    .tp_getset = export_getset,
};

/* The Export of a started handle (with the GIL, the unit held), its URIs
 * in uris (whose reference it takes). On failure the handle is stopped. */
static Export *export_new(Unit *u, enum export_kind kind, void *handle,
                          PyObject *uris)
{
    Export *e = uris ? PyObject_New(Export, &spdpy_export_type) : NULL;
    if (!e) {
        Py_BEGIN_ALLOW_THREADS
        export_stop(kind, handle);
        Py_END_ALLOW_THREADS
        Py_XDECREF(uris);
        return NULL;
    }
    e->kind = kind;
    e->handle = handle;
    e->uris = uris;
    e->unit = u;
    Py_INCREF(e);                   /* the unit's reference */
    e->next = u->exports;
    u->exports = e;
    return e;
}

/* What a serve_*() call asks for, for its start and uris functions. */
struct serve_args {
    const char *address, *name, *description;    /* NBD; iSCSI: name is the
                                                     target, description
                                                     the CHAP file */
    const char *path;                             /* FUSE */
    spd_ublk_options ublk;
};

/* Start an export of unit (without the GIL): 0 with *handle, or -errno. */
typedef int (*start_fn)(spd_unit *unit, const struct serve_args *a,
                        void **handle);
/* Its URIs (with the GIL): a tuple of str, or NULL with an exception. */
typedef PyObject *(*uris_fn)(void *handle, const struct serve_args *a);

/* The one way exports start: the unit held while the export starts and
 * until it is in the unit's list, so a close() in another thread either
 * comes first (we see the unit closed) or stops this export too. */
static PyObject *serve(Unit *u, enum export_kind kind, start_fn start,
                       uris_fn uris, const struct serve_args *a)
{
    void *handle = NULL;
    int r = 0;
    PyThreadState *ts = PyEval_SaveThread();
    spd_unit *unit = unit_hold(u);
    if (unit)
        r = start(unit, a, &handle);
    PyEval_RestoreThread(ts);
    if (!unit)
        return closed_error();
    PyObject *e = NULL;
    if (r)
        spdpy_os_error(-r);
    else
        e = (PyObject *)export_new(u, kind, handle, uris(handle, a));
    unit_unhold(u);
    return e;
}

/* A list of str into a tuple (both references given). */
static PyObject *as_tuple(PyObject *list)
{
    PyObject *t = list ? PyList_AsTuple(list) : NULL;
    Py_XDECREF(list);
    return t;
}

static int nbd_start(spd_unit *unit, const struct serve_args *a, void **h)
{
    spd_nbd_server *s = spd_nbd_server_create(NULL);
    int r = s ? spd_nbd_server_add(s, unit, a->name, a->description) : -errno;
    if (!r)
        r = spd_nbd_server_listen(s, a->address);
    if (!r)
        r = spd_nbd_server_start(s);
    if (r)
        spd_nbd_server_destroy(s);
    *h = r ? NULL : s;
    return r;
}

/* Each listener's URI with the export name in its path. */
static PyObject *nbd_uris(void *handle, const struct serve_args *a)
{
    PyObject *list = PyList_New(0);
    char uri[4200];
    for (unsigned i = 0; list &&
         !spd_nbd_server_listener_uri(handle, i, uri, sizeof uri); i++) {
        /* nbd+unix:///?socket=PATH: the name goes before the query. */
        char *query = strchr(uri, '?'), q[4200] = "";
        if (query) {
            snprintf(q, sizeof q, "%s", query);
            *query = '\0';
        }
        PyObject *s = PyUnicode_FromFormat("%s%s%s%s", uri, query ? "" : "/",
                                           a->name, q);
        if (!s || PyList_Append(list, s))
            Py_CLEAR(list);
        Py_XDECREF(s);
    }
    return as_tuple(list);
}

static PyObject *unit_serve_nbd(Unit *u, PyObject *args, PyObject *kw)
{
    static char *names[] = { "address", "name", "description", NULL };
    struct serve_args a = { .name = "" };
    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|sz:serve_nbd", names,
                                     &a.address, &a.name, &a.description))
        return NULL;
    return serve(u, EXPORT_NBD, nbd_start, nbd_uris, &a);
}

static int iscsi_start(spd_unit *unit, const struct serve_args *a, void **h)
{
    spd_iscsi_target *t = spd_iscsi_target_create(NULL);
    int r = t ? spd_iscsi_target_add(t, unit, a->name, 0) : -errno;
    if (!r && a->description)
        r = spd_iscsi_target_set_chap(t, NULL, a->description);
    if (!r)
        r = spd_iscsi_target_listen(t, a->address);
    if (!r)
        r = spd_iscsi_target_start(t);
    if (r)
        spd_iscsi_target_destroy(t);
    *h = r ? NULL : t;
    return r;
}

static PyObject *iscsi_uris(void *handle, const struct serve_args *a)
{
    PyObject *list = PyList_New(0);
    char uri[300];
    for (unsigned i = 0; list &&
         !spd_iscsi_target_listener_uri(handle, i, uri, sizeof uri); i++) {
        PyObject *s = PyUnicode_FromFormat("%s/%s/0", uri, a->name);
        if (!s || PyList_Append(list, s))
            Py_CLEAR(list);
        Py_XDECREF(s);
    }
    return as_tuple(list);
}

static PyObject *unit_serve_iscsi(Unit *u, PyObject *args, PyObject *kw)
{
    static char *names[] = { "address", "target", "chap_file", NULL };
    struct serve_args a = { 0 };
    if (!PyArg_ParseTupleAndKeywords(args, kw, "ss|z:serve_iscsi", names,
                                     &a.address, &a.name, &a.description))
        return NULL;
    return serve(u, EXPORT_ISCSI, iscsi_start, iscsi_uris, &a);
}

static int fuse_start(spd_unit *unit, const struct serve_args *a, void **h)
{
    spd_fuse_export *f = spd_fuse_export_create();
    int r = f ? spd_fuse_export_add(f, unit, a->path) : -errno;
    if (!r)
        r = spd_fuse_export_start(f);
    if (r)
        spd_fuse_export_destroy(f);
    *h = r ? NULL : f;
    return r;
}

static PyObject *fuse_uris(void *handle, const struct serve_args *a)
{
    return Py_BuildValue("(N)", PyUnicode_DecodeFSDefault(a->path));
}

static PyObject *unit_serve_fuse(Unit *u, PyObject *args)
{
    PyObject *path;
    if (!PyArg_ParseTuple(args, "O&:serve_fuse", PyUnicode_FSConverter, &path))
        return NULL;
    struct serve_args a = { .path = PyBytes_AS_STRING(path) };
    PyObject *e = serve(u, EXPORT_FUSE, fuse_start, fuse_uris, &a);
    Py_DECREF(path);
    return e;
}

static int ublk_start(spd_unit *unit, const struct serve_args *a, void **h)
{
    spd_ublk_export *x = spd_ublk_export_create(&a->ublk);
    int r = x ? spd_ublk_export_add(x, unit) : -errno;
    if (!r)
        r = spd_ublk_export_start(x);
    if (r)
        spd_ublk_export_destroy(x);
    *h = r ? NULL : x;
    return r;
}

static PyObject *ublk_uris(void *handle, const struct serve_args *a)
{
    return Py_BuildValue("(N)", PyUnicode_FromFormat(
                         "/dev/ublkb%d", spd_ublk_export_id(handle)));
}

static PyObject *unit_serve_ublk(Unit *u, PyObject *args, PyObject *kw)
{
    static char *names[] = { "id", "queues", "queue_depth", "recovery", NULL };
    struct serve_args a = { .ublk = { SPD_UBLK_OPTIONS_INIT } };
    int recovery = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|iIIp:serve_ublk", names,
                                     &a.ublk.id, &a.ublk.queues,
                                     &a.ublk.queue_depth, &recovery))
        return NULL;
    a.ublk.recovery = recovery;
    return serve(u, EXPORT_UBLK, ublk_start, ublk_uris, &a);
}

/* ------------------------------------------------------------------ */
/* The unit                                                            */
/* ------------------------------------------------------------------ */

static PyObject *unit_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    Unit *u = (Unit *)type->tp_alloc(type, 0);
    if (u)
        pthread_rwlock_init(&u->lock, NULL);
    return (PyObject *)u;
}

static int unit_init(Unit *u, PyObject *args, PyObject *kw)
{
    static char *names[] = { "device", "block_count", "block_length", "uuid",
                             "product_id", "product_revision",
                             "write_protected", "cache", "unmap",
                             "unmap_reads_zero", "max_transfer_length",
                             "physical_block_length", "threads", NULL };
    spd_params p = { SPD_PARAMS_INIT, .block_length = 512 };
    PyObject *device;
    const char *uuid = NULL, *pid = "", *prev = "";
    Py_ssize_t uuid_len = 0;
    int wp = 0, cache = 0, unmap = 0, lbprz = 0;
    unsigned threads = 0;
    if (u->open || u->dev.device) {
        PyErr_SetString(PyExc_RuntimeError, "Unit.__init__ called twice");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O$KIz#ssppppIII:Unit", names,
                                     &device, &p.block_count, &p.block_length,
                                     &uuid, &uuid_len, &pid, &prev, &wp,
                                     &cache, &unmap, &lbprz,
                                     &p.max_transfer_length,
                                     &p.physical_block_length, &threads))
        return -1;
    if (uuid && uuid_len != 16) {
        PyErr_SetString(PyExc_ValueError, "uuid: 16 bytes");
        return -1;
    }
    if (uuid)
        memcpy(p.uuid, uuid, 16);
    else if (spd_uuid_generate(p.uuid))
        return spdpy_os_error(errno), -1;
    snprintf(p.product_id, sizeof p.product_id, "%s", pid);
    snprintf(p.product_revision, sizeof p.product_revision, "%s", prev);
    p.write_protected = wp;
    p.cache_supported = cache;
    p.unmap_supported = unmap;
    p.unmap_reads_zero = unmap && lbprz;
    if (pydev_init(&u->dev, device, p.block_length))
        return -1;
    spd_unit *unit = spd_unit_create(&p, &u->dev.ops, &u->dev);
    int r = unit ? 0 : -errno;
    if (unit && threads) {
        Py_BEGIN_ALLOW_THREADS
        r = spd_unit_start(unit, threads);
        if (r)
            spd_unit_destroy(unit);
        Py_END_ALLOW_THREADS
    }
    if (r) {
        pydev_clear(&u->dev);
        spdpy_os_error(-r);
        return -1;
    }
    u->unit = unit;
    u->open = true;
    u->params = *spd_unit_params(unit);
    u->next_open = open_units;
    u->prev_open = &open_units;
    if (open_units)
        open_units->prev_open = &u->next_open;
    open_units = u;
    return 0;
}

/* Stop the exports, flush, destroy the unit: 0, or the flush's -errno.
 * The thread that takes the C unit away does it; others return. */
static int unit_close(Unit *u)
{
    if (!u->open)
        return 0;
    u->open = false;
    *u->prev_open = u->next_open;
    if (u->next_open)
        u->next_open->prev_open = u->prev_open;
    spd_unit *unit;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_wrlock(&u->lock);  /* after every call holding it */
    unit = u->unit;
    u->unit = NULL;
    pthread_rwlock_unlock(&u->lock);
    Py_END_ALLOW_THREADS
    while (u->exports)
        export_close(u->exports);
    spd_request flush = { SPD_REQUEST_INIT, .op = SPD_OP_FLUSH };
    Py_BEGIN_ALLOW_THREADS
    spd_unit_run(unit, &flush);
    spd_unit_destroy(unit);
    Py_END_ALLOW_THREADS
    pydev_clear(&u->dev);
    return -spd_request_errno(&flush);
}

static PyObject *unit_close_py(Unit *u, PyObject *unused)
{
    int r = unit_close(u);
    if (r) {
        errno = -r;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

PyObject *spdpy_close_all(PyObject *self, PyObject *unused)
{
    while (open_units)
        unit_close(open_units);   /* takes it off the list */
    Py_RETURN_NONE;
}

static PyObject *unit_enter(Unit *u, PyObject *unused)
{
    Py_INCREF(u);
    return (PyObject *)u;
}

static PyObject *unit_exit(Unit *u, PyObject *args)
{
    PyObject *r = unit_close_py(u, NULL);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

static int unit_traverse(Unit *u, visitproc visit, void *arg)
{
    for (Export *e = u->exports; e; e = e->next)
        Py_VISIT(e);
    return pydev_traverse(&u->dev, visit, arg);
}

/* The GC clears a unit only when it is unreachable: no export holds it. */
static int unit_clear(Unit *u)
{
    unit_close(u);
    pydev_clear(&u->dev);
    return 0;
}

static void unit_dealloc(Unit *u)
{
    PyObject_GC_UnTrack(u);
    unit_close(u);
    pydev_clear(&u->dev);
    pthread_rwlock_destroy(&u->lock);
    Py_TYPE(u)->tp_free((PyObject *)u);
}

/* ------------------------------------------------------------------ */
/* In-process I/O                                                      */
/* ------------------------------------------------------------------ */

static PyObject *unit_pread(Unit *u, PyObject *args)
{
    unsigned long long off;
    Py_ssize_t len;
    if (!PyArg_ParseTuple(args, "nK:pread", &len, &off))
        return NULL;
    if (len < 0) {
        PyErr_SetString(PyExc_ValueError, "pread: a negative length");
        return NULL;
    }
    PyObject *data = PyBytes_FromStringAndSize(NULL, len);
    if (!data)
        return NULL;
    char *buf = PyBytes_AS_STRING(data);
    int r = -ESHUTDOWN;
    Py_BEGIN_ALLOW_THREADS
    spd_unit *unit = unit_hold(u);
    if (unit) {
        r = spd_unit_pread(unit, buf, (size_t)len, off);
        unit_unhold(u);
    }
    Py_END_ALLOW_THREADS
    if (r) {
        Py_DECREF(data);
        if (r == -ESHUTDOWN)
            return closed_error();
        errno = -r;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return data;
}

static PyObject *unit_pwrite(Unit *u, PyObject *args, PyObject *kw)
{
    static char *names[] = { "data", "offset", "fua", NULL };
    Py_buffer data;
    unsigned long long off;
    int fua = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*K|p:pwrite", names, &data,
                                     &off, &fua))
        return NULL;
    int r = -ESHUTDOWN;
    Py_BEGIN_ALLOW_THREADS
    spd_unit *unit = unit_hold(u);
    if (unit) {
        r = spd_unit_pwrite(unit, data.buf, (size_t)data.len, off, fua);
        unit_unhold(u);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    if (r == -ESHUTDOWN)
        return closed_error();
    if (r) {
        errno = -r;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

/* A block request of op over the whole unit (flush) and its errno. */
static PyObject *unit_flush(Unit *u, PyObject *unused)
{
    spd_request req = { SPD_REQUEST_INIT, .op = SPD_OP_FLUSH };
    int r = -ESHUTDOWN;
    Py_BEGIN_ALLOW_THREADS
    spd_unit *unit = unit_hold(u);
    if (unit) {
        spd_unit_run(unit, &req);
        r = -spd_request_errno(&req);
        unit_unhold(u);
    }
    Py_END_ALLOW_THREADS
    if (r == -ESHUTDOWN)
        return closed_error();
    if (r) {
        errno = -r;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

/* scsi(cdb, data=b"", data_in=0) -> (status, data_in bytes, sense bytes) */
static PyObject *unit_scsi(Unit *u, PyObject *args, PyObject *kw)
{
    static char *names[] = { "cdb", "data", "data_in", NULL };
    Py_buffer cdb, out = { 0 };
    unsigned data_in = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*|y*I:scsi", names, &cdb,
                                     &out, &data_in))
        return NULL;
    spd_scsi_cmd cmd = { SPD_SCSI_CMD_INIT };
    void *buf = NULL;
    PyObject *result = NULL;
    if (cdb.len < 6 || cdb.len > SPD_CDB_MAX || (out.len && data_in)) {
        PyErr_SetString(PyExc_ValueError, "scsi: a CDB of 6 to 32 bytes, and "
                        "data out or data in, not both");
        goto out;
    }
    if (!(buf = PyMem_Calloc(1, out.len ? (size_t)out.len : data_in + 1))) {
        PyErr_NoMemory();
        goto out;
    }
    memcpy(cmd.cdb, cdb.buf, (size_t)cdb.len);
    cmd.cdb_len = (uint8_t)cdb.len;
    if (out.len)
        memcpy(buf, out.buf, (size_t)out.len);
    cmd.data = buf;
    cmd.data_len = out.len ? (uint32_t)out.len : data_in;
    int closed = 1;
    Py_BEGIN_ALLOW_THREADS
    spd_unit *unit = unit_hold(u);
    if (unit) {
        closed = 0;
        spd_unit_scsi_run(unit, &cmd);
        unit_unhold(u);
    }
    Py_END_ALLOW_THREADS
    if (closed)
        closed_error();
    else
        result = Py_BuildValue("(iy#y#)", cmd.scsi_status, (char *)buf,
                               (Py_ssize_t)(out.len ? 0 : cmd.data_in_len),
                               (char *)cmd.sense, (Py_ssize_t)cmd.sense_len);
out:
    PyMem_Free(buf);
    PyBuffer_Release(&cdb);
    if (out.obj)
        PyBuffer_Release(&out);
    return result;
}

/* ------------------------------------------------------------------ */
/* Attributes                                                          */
/* ------------------------------------------------------------------ */

static const spd_params *params_of(Unit *u)
{
    if (!u->open)
        closed_error();
    return u->open ? &u->params : NULL;
}

static PyObject *unit_get_block_count(Unit *u, void *closure)
{
    const spd_params *p = params_of(u);
    return p ? PyLong_FromUnsignedLongLong(p->block_count) : NULL;
}

static PyObject *unit_get_block_length(Unit *u, void *closure)
{
    const spd_params *p = params_of(u);
    return p ? PyLong_FromUnsignedLong(p->block_length) : NULL;
}

static PyObject *unit_get_size(Unit *u, void *closure)
{
    const spd_params *p = params_of(u);
    return p ? PyLong_FromUnsignedLongLong(p->block_count * p->block_length)
             : NULL;
}

static PyObject *unit_get_uuid(Unit *u, void *closure)
{
    const spd_params *p = params_of(u);
    char text[37];
    if (!p)
        return NULL;
    spd_uuid_format(p->uuid, text);
    return PyUnicode_FromString(text);
}

static PyObject *unit_get_device(Unit *u, void *closure)
{
    PyObject *d = u->dev.device ? u->dev.device : Py_None;
    Py_INCREF(d);
    return d;
}

static PyObject *unit_get_closed(Unit *u, void *closure)
{
    return PyBool_FromLong(!u->open);
}

static PyObject *unit_get_exports(Unit *u, void *closure)
{
    PyObject *list = PyList_New(0);
    for (Export *e = u->exports; list && e; e = e->next)
        if (PyList_Append(list, (PyObject *)e))
            Py_CLEAR(list);
    return list;
}

static PyMethodDef unit_methods[] = {
    { "serve_nbd", (PyCFunction)(void (*)(void))unit_serve_nbd,
      METH_VARARGS | METH_KEYWORDS,
      "serve_nbd(address, name='', description=None) -> Export: NBD at "
      "nbd://HOST:PORT/ (port 0: any free one), "
      "nbd+unix:///?socket=PATH, or systemd[:NAME]." },
    { "serve_iscsi", (PyCFunction)(void (*)(void))unit_serve_iscsi,
      METH_VARARGS | METH_KEYWORDS,
      "serve_iscsi(address, target, chap_file=None) -> Export: LUN 0 of the "
      "iSCSI target named target, at iscsi://HOST:PORT." },
    { "serve_fuse", (PyCFunction)unit_serve_fuse, METH_VARARGS,
      "serve_fuse(path) -> Export: the disk as the regular file path, for "
      "losetup." },
    { "serve_ublk", (PyCFunction)(void (*)(void))unit_serve_ublk,
      METH_VARARGS | METH_KEYWORDS,
      "serve_ublk(id=-1, queues=0, queue_depth=0, recovery=False) -> "
      "Export: the disk as /dev/ublkbN." },
    { "pread", (PyCFunction)unit_pread, METH_VARARGS,
      "pread(length, offset) -> bytes, through the unit core." },
    { "pwrite", (PyCFunction)(void (*)(void))unit_pwrite,
      METH_VARARGS | METH_KEYWORDS,
      "pwrite(data, offset, fua=False), through the unit core." },
    { "flush", (PyCFunction)unit_flush, METH_NOARGS, "Flush the unit." },
    { "scsi", (PyCFunction)(void (*)(void))unit_scsi,
      METH_VARARGS | METH_KEYWORDS,
      "scsi(cdb, data=b'', data_in=0) -> (status, data, sense): a SCSI "
      "command through the unit's SCSI engine." },
    { "close", (PyCFunction)unit_close_py, METH_NOARGS,
      "Stop every export (requests in flight answered first), flush, and "
      "free the unit." },
    { "__enter__", (PyCFunction)unit_enter, METH_NOARGS, NULL },
    { "__exit__", (PyCFunction)unit_exit, METH_VARARGS, NULL },
    { NULL }
};

static PyGetSetDef unit_getset[] = {
    { "block_count", (getter)unit_get_block_count, NULL, NULL, NULL },
    { "block_length", (getter)unit_get_block_length, NULL, NULL, NULL },
    { "size", (getter)unit_get_size, NULL, "bytes", NULL },
    { "uuid", (getter)unit_get_uuid, NULL, NULL, NULL },
    { "device", (getter)unit_get_device, NULL, NULL, NULL },
    { "closed", (getter)unit_get_closed, NULL, NULL, NULL },
    { "exports", (getter)unit_get_exports, NULL, "the open exports", NULL },
    { NULL }
};

PyTypeObject spdpy_unit_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "spd._spd.Unit",
    .tp_doc = "A storage unit served by a Python device (see spd.Unit).",
    .tp_basicsize = sizeof(Unit),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = unit_new,
    .tp_init = (initproc)unit_init,
    .tp_dealloc = (destructor)unit_dealloc,
    .tp_traverse = (traverseproc)unit_traverse,
    .tp_clear = (inquiry)unit_clear,
    .tp_methods = unit_methods,
    .tp_getset = unit_getset,
};
