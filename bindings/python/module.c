/*
 * module.c - spd._spd, the C part of the spd package: the types Unit,
 * Export and Request, main(), and the hooks the package's Python part
 * (spd/__init__.py) installs with _init().
 */
#include "spdpy.h"

/* _init(SenseError, log): what the C part needs from the Python part. */
static PyObject *module_init_hooks(PyObject *self, PyObject *args)
{
    PyObject *sense_error, *log;
    if (!PyArg_ParseTuple(args, "OO:_init", &sense_error, &log))
        return NULL;
    Py_INCREF(sense_error);
    Py_INCREF(log);
    Py_XSETREF(spdpy_sense_error, sense_error);
    Py_XSETREF(spdpy_log, log);
    Py_RETURN_NONE;
}

static PyObject *module_version(PyObject *self, PyObject *unused)
{
    return PyUnicode_FromString(spd_version());
}

static PyMethodDef module_methods[] = {
    { "_init", module_init_hooks, METH_VARARGS, NULL },
    { "main", (PyCFunction)(void (*)(void))spdpy_main,
      METH_VARARGS | METH_KEYWORDS, "spd_main() for a Python device (use "
      "spd.main)." },
    { "close_all", spdpy_close_all, METH_NOARGS,
      "Close every unit still open (at exit)." },
    { "version", module_version, METH_NOARGS,
      "The version of libspd." },
    { NULL }
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "spd._spd",
    .m_doc = "The C part of spd: serve a disk written in Python.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__spd(void);
PyMODINIT_FUNC PyInit__spd(void)
{
    PyTypeObject *types[] = { &spdpy_unit_type, &spdpy_export_type,
                              &spdpy_request_type };
    const char *names[] = { "Unit", "Export", "Request" };
    PyObject *m = PyModule_Create(&module);
    for (size_t i = 0; m && i < 3; i++)
        if (PyType_Ready(types[i]) ||
            PyModule_AddObjectRef(m, names[i], (PyObject *)types[i]))
            Py_CLEAR(m);
    return m;
}
