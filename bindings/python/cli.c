/*
 * cli.c - spd._spd.main(): the device command line of spd_main() (every
 * option, export, signal and the self-check of the C devices) for a
 * device written in Python. The Python part (spd.main() in
 * spd/__init__.py) gives three functions: take(index, arg) for the
 * device's own options, open(params) -> (device, params) or an exit
 * status, and close(served). spd_main() runs without the GIL; its hooks
 * take it.
 */
#include <signal.h>

#include "spdpy.h"
#include "spd/cli.h"

struct pymain {
    struct pydev dev;
    PyObject *take, *open, *close;
    bool opened;
};

/* An exception from a hook (the Python part reports the expected ones
 * itself and answers with a status): shown, and the run fails. */
static int hook_failed(PyObject *hook)
{
    PyErr_WriteUnraisable(hook);
    return SPD_EXIT_FAILURE;
}

/* None: 0; an int: that status. */
static int status_of(PyObject *res, PyObject *hook)
{
    if (!res)
        return hook_failed(hook);
    int status = res == Py_None ? 0 : (int)PyLong_AsLong(res);
    Py_DECREF(res);
    if (PyErr_Occurred())
        return hook_failed(hook);
    return status;
}

static int hook_take(void *ctx, unsigned index, const char *arg)
{
    struct pymain *m = ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    int status = status_of(PyObject_CallFunction(m->take, "Iz", index, arg),
                           m->take);
    PyGILState_Release(g);
    return status;
}

static PyObject *params_dict(const spd_params *p, unsigned given)
{
    return Py_BuildValue("{sKsIsy#sssssOsOsOsOsIsIsI}",
        "block_count", (unsigned long long)p->block_count,
        "block_length", p->block_length,
        "uuid", (const char *)p->uuid, (Py_ssize_t)16,
        "product_id", p->product_id,
        "product_revision", p->product_revision,
        "write_protected", p->write_protected ? Py_True : Py_False,
        "cache", p->cache_supported ? Py_True : Py_False,
        "unmap", p->unmap_supported ? Py_True : Py_False,
        "unmap_reads_zero", p->unmap_reads_zero ? Py_True : Py_False,
        "max_transfer_length", p->max_transfer_length,
        "physical_block_length", p->physical_block_length,
        "given", given);
}

/* Read the parameters back from the dict open() answered. */
static int params_apply(spd_params *p, PyObject *d)
{
    static char *names[] = { "block_count", "block_length", "uuid",
                             "product_id", "product_revision",
                             "write_protected", "cache", "unmap",
                             "unmap_reads_zero", "max_transfer_length",
                             "physical_block_length", "given", NULL };
    const char *uuid, *pid, *prev;
    Py_ssize_t uuid_len;
    int wp, cache, unmap, lbprz;
    unsigned given;
    PyObject *empty = PyTuple_New(0);
    int ok = empty && PyArg_ParseTupleAndKeywords(empty, d,
        "KIy#ssppppIII:params", names, &p->block_count, &p->block_length,
        &uuid, &uuid_len, &pid, &prev, &wp, &cache, &unmap, &lbprz,
        &p->max_transfer_length, &p->physical_block_length, &given);
    Py_XDECREF(empty);
    if (!ok)
        return -1;
    if (uuid_len != 16) {
        PyErr_SetString(PyExc_ValueError, "params.uuid: 16 bytes");
        return -1;
    }
    memcpy(p->uuid, uuid, 16);
    snprintf(p->product_id, sizeof p->product_id, "%s", pid);
    snprintf(p->product_revision, sizeof p->product_revision, "%s", prev);
    p->write_protected = wp;
    p->cache_supported = cache;
    p->unmap_supported = unmap;
    p->unmap_reads_zero = unmap && lbprz;
    return 0;
}

static int hook_open(void *ctx, spd_params *params, unsigned given)
{
    struct pymain *m = ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    int status = SPD_EXIT_FAILURE;
    PyObject *device, *pd, *d = params_dict(params, given);
    PyObject *res = d ? PyObject_CallOneArg(m->open, d) : NULL;
    Py_XDECREF(d);
    if (res && !PyTuple_Check(res)) {
        status = status_of(res, m->open);
        if (!status)
            status = SPD_EXIT_FAILURE;
    } else if (!res || !PyArg_ParseTuple(res, "OO!", &device, &PyDict_Type,
                                         &pd) ||
               params_apply(params, pd) ||
               pydev_init(&m->dev, device, params->block_length)) {
        status = hook_failed(m->open);
    } else {
        m->opened = true;
        status = 0;
    }
    Py_XDECREF(res);
    PyGILState_Release(g);
    return status;
}

static void hook_close(void *ctx, bool served)
{
    struct pymain *m = ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *res = PyObject_CallFunction(m->close, "O",
                                          served ? Py_True : Py_False);
    if (!res)
        hook_failed(m->close);
    Py_XDECREF(res);
    pydev_clear(&m->dev);
    PyGILState_Release(g);
}

/* The device's own options: (name, short letter or None, argument name or
 * None, help) tuples, their strings kept alive by the tuple. */
static spd_device_option *options_of(PyObject *seq, unsigned *count)
{
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    spd_device_option *o = PyMem_Calloc((size_t)n + 1, sizeof *o);
    if (!o)
        return (spd_device_option *)PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PySequence_Fast_GET_ITEM(seq, i);
        const char *shorts = NULL;
        if (!PyArg_ParseTuple(t, "szzs;an option is (name, short, arg, help)",
                              &o[i].name, &shorts, &o[i].arg, &o[i].help)) {
            PyMem_Free(o);
            return NULL;
        }
        o[i].short_name = shorts ? (unsigned char)shorts[0] : 0;
    }
    *count = (unsigned)n;
    return o;
}

PyObject *spdpy_main(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = { "argv", "name", "summary", "version",
                             "default_size", "size_help", "threads",
                             "options", "take", "open", "close", NULL };
    spd_device dev = { SPD_DEVICE_INIT };
    struct pymain m = { 0 };
    PyObject *argv_obj, *options_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!szzKzIOOOO:main", names,
                                     &PyList_Type, &argv_obj, &dev.name,
                                     &dev.summary, &dev.version,
                                     &dev.default_size, &dev.size_help,
                                     &dev.default_threads, &options_obj,
                                     &m.take, &m.open, &m.close))
        return NULL;
    PyObject *options = PySequence_Fast(options_obj, "options: a sequence");
    PyObject *argv_bytes = PyList_New(0);
    Py_ssize_t argc = PyList_GET_SIZE(argv_obj);
    char **argv = PyMem_Calloc((size_t)argc + 1, sizeof *argv);
    PyObject *result = NULL;
    if (!options || !argv_bytes || !argv ||
        !(dev.options = options_of(options, &dev.option_count)))
        goto out;
    for (Py_ssize_t i = 0; i < argc; i++) {
        PyObject *b = PyUnicode_EncodeFSDefault(PyList_GET_ITEM(argv_obj, i));
        if (!b || PyList_Append(argv_bytes, b)) {
            Py_XDECREF(b);
            goto out;
        }
        argv[i] = PyBytes_AS_STRING(b);
        Py_DECREF(b);
    }
    pydev_ops_all(&m.dev.ops);
    dev.ops = &m.dev.ops;           /* filled for the device by open() */
    dev.ctx = &m;
    dev.take = hook_take;
    dev.open = hook_open;
    dev.close = hook_close;

    /* spd_main() blocks the signals it waits for in this thread; Python
     * gets its mask back afterwards. */
    sigset_t mask;
    int status;
    Py_BEGIN_ALLOW_THREADS
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    status = spd_main((int)argc, argv, &dev);
    pthread_sigmask(SIG_SETMASK, &mask, NULL);
    Py_END_ALLOW_THREADS
    result = PyLong_FromLong(status);
out:
    if (m.dev.device)               /* close() never ran */
        pydev_clear(&m.dev);
    PyMem_Free((void *)dev.options);
    PyMem_Free(argv);
    Py_XDECREF(argv_bytes);
    Py_XDECREF(options);
    return result;
}
