/*
 * spdpy.h - the parts of the Python module spd._spd: a Python object as a
 * device (device.c: the operations the unit core calls, the Request of an
 * asynchronous device), the unit and its exports (unit.c), the device
 * command line (cli.c), and the module (module.c).
 *
 * Threads: the core and the exports run without the GIL; every callback
 * into Python takes it (PyGILState_Ensure) and gives it back before
 * returning to the core. No C call that can block or call back into a
 * device is made with the GIL held.
 */
#ifndef SPDPY_H
#define SPDPY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdbool.h>

#include "spd/spd.h"

/* A Python object serving as a device: its methods, looked up once (NULL
 * where it has none), and the operations that call them. */
struct pydev {
    PyObject *device;
    PyObject *read, *readinto, *write, *flush, *unmap, *extents;
    bool async;              /* device.asynchronous: methods get a Request */
    uint32_t block_length;
    spd_ops ops;
};

/* Look up device's methods and fill d->ops (flags from its thread_safe
 * and native_fua attributes): 0, or -1 with an exception set. */
int pydev_init(struct pydev *d, PyObject *device, uint32_t block_length);
void pydev_clear(struct pydev *d);
/* Every operation, for a device not known yet (spd.main() before the
 * device's factory ran: what the command line offers by default). */
void pydev_ops_all(spd_ops *ops);
int pydev_traverse(struct pydev *d, visitproc visit, void *arg);

/* The Request type an asynchronous device's methods get. */
extern PyTypeObject spdpy_request_type;

/* From the package's Python part (spd/__init__.py, through _init()):
 * the SenseError class, and the function that logs a device's exception
 * with its traceback: log(device, op, lba, count, exc). */
extern PyObject *spdpy_sense_error;
extern PyObject *spdpy_log;

/* Raise OSError(err, spd_errmsg()) and return NULL. */
PyObject *spdpy_os_error(int err);

/* cli.c: spd._spd.main(). */
PyObject *spdpy_main(PyObject *self, PyObject *args, PyObject *kwargs);

/* unit.c: the Unit and Export types; close every unit still open. */
extern PyTypeObject spdpy_unit_type;
extern PyTypeObject spdpy_export_type;
PyObject *spdpy_close_all(PyObject *self, PyObject *unused);

#endif
