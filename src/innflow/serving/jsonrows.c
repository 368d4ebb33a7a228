/* JSON rows, as orjson parsed them, into typed columns (serving/jsonrows.py).

   slot[j] >= 0: column j holds numbers, written to num[slot[j] * n + i] (float64);
   slot[j] <  0: column j holds text, its objects put in obj[~slot[j] * n + i] (an object
   array the caller made, full of None).
   Every function returns 0 when it wrote every cell, or 1 to decline: the body is then
   read by the Python path, which names each problem. They run with the GIL held (ctypes
   PyDLL), borrow every reference they read and never raise: an error they meet is
   cleared, and they decline. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <structmember.h> /* PyMemberDef, T_OBJECT_EX */

#define ABSENT INT64_MIN /* a field the first record lacks, so every record must */

/* A number column takes exactly what the Python path turns into float64 unchanged: int
   (rounded as float(int) rounds), float, None (NaN). A bool, text or an int beyond the
   range of a double declines. */
static inline int put(PyObject *v, int64_t slot, Py_ssize_t i, Py_ssize_t n, double *num,
                      PyObject **obj) {
  if (slot >= 0) {
    double *cell = num + slot * n + i;
    if (PyFloat_CheckExact(v)) {
      *cell = PyFloat_AS_DOUBLE(v);
      return 0;
    }
    if (v == Py_None) {
      *cell = NAN;
      return 0;
    }
    if (PyLong_CheckExact(v)) {
      double d = PyLong_AsDouble(v);
      if (d == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return 1;
      }
      *cell = d;
      return 0;
    }
    return 1;
  }
  PyObject **cell = obj + (~slot) * n + i;
  PyObject *old = *cell;
  Py_INCREF(v);
  *cell = v;
  Py_XDECREF(old);
  return 0;
}

/* dataframe_split's "data": a list of n lists of exactly k values each. */
long innflow_split(PyObject *rows, Py_ssize_t k, const int64_t *slot, double *num,
                   PyObject **obj) {
  if (!PyList_CheckExact(rows)) return 1;
  Py_ssize_t n = PyList_GET_SIZE(rows);
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject *row = PyList_GET_ITEM(rows, i);
    if (!PyList_CheckExact(row) || PyList_GET_SIZE(row) != k) return 1;
    for (Py_ssize_t j = 0; j < k; ++j)
      if (put(PyList_GET_ITEM(row, j), slot[j], i, n, num, obj)) return 1;
  }
  return 0;
}

/* dataframe_records (instances, inputs): a list of n dicts, each with exactly the k keys
   in names (a tuple of str). */
long innflow_records(PyObject *records, PyObject *names, const int64_t *slot, double *num,
                     PyObject **obj) {
  if (!PyList_CheckExact(records) || !PyTuple_CheckExact(names)) return 1;
  Py_ssize_t n = PyList_GET_SIZE(records), k = PyTuple_GET_SIZE(names);
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject *row = PyList_GET_ITEM(records, i);
    if (!PyDict_CheckExact(row) || PyDict_GET_SIZE(row) != k) return 1;
    for (Py_ssize_t j = 0; j < k; ++j) {
      PyObject *v = PyDict_GetItemWithError(row, PyTuple_GET_ITEM(names, j));
      if (v == NULL) {
        PyErr_Clear();
        return 1;
      }
      if (put(v, slot[j], i, n, num, obj)) return 1;
    }
  }
  return 0;
}

/* The byte offset of an object slot (a member descriptor, as each field of a msgspec
   Struct is), or -1 for anything else. */
Py_ssize_t innflow_offset(PyObject *descr) {
  if (!Py_IS_TYPE(descr, &PyMemberDescr_Type)) return -1;
  PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
  return member->type == T_OBJECT_EX ? member->offset : -1;
}

/* Records decoded by msgspec straight from the body's bytes: a list of n instances of
   type, field f held at offset[f]. slot[f] as above, or ABSENT: that field must be unset
   in every record (as in the first). A text column takes str or null only (msgspec
   keeps an integer beyond 64 bits exact where orjson gives a float). */
long innflow_structs(PyObject *records, PyObject *type, PyObject *unset, Py_ssize_t k,
                     const Py_ssize_t *offset, const int64_t *slot, double *num,
                     PyObject **obj) {
  if (!PyList_CheckExact(records)) return 1;
  Py_ssize_t n = PyList_GET_SIZE(records);
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject *row = PyList_GET_ITEM(records, i);
    if ((PyObject *)Py_TYPE(row) != type) return 1;
    for (Py_ssize_t j = 0; j < k; ++j) {
      PyObject *v = *(PyObject **)((char *)row + offset[j]);
      if (slot[j] == ABSENT) {
        if (v != unset) return 1;
        continue;
      }
      if (v == NULL) return 1; /* (unset: put declines it, as any other object) */
      if (slot[j] < 0 && v != Py_None && !PyUnicode_CheckExact(v)) return 1;
      if (put(v, slot[j], i, n, num, obj)) return 1;
    }
  }
  return 0;
}
