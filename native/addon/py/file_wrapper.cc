// wsgi.file_wrapper(filelike, blksize=8192): iterates the file in blocks. When an application returns
// one for a plain file, response.cc sends it as a FILE frame instead (the Apache child reads the file).
#include "py_internal.h"

#include <structmember.h>

namespace modwsgi {

namespace {

struct FileWrapperObject {
    PyObject_HEAD
    PyObject *filelike;
    Py_ssize_t blksize;
};

PyObject *file_wrapper_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static const char *keywords[] = {"filelike", "blksize", nullptr};
    PyObject *filelike;
    Py_ssize_t blksize = 8192;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|n:FileWrapper", const_cast<char **>(keywords), &filelike,
                                     &blksize))
        return nullptr;
    if (blksize <= 0) {
        PyErr_SetString(PyExc_ValueError, "blksize must be positive");
        return nullptr;
    }
    auto *self = reinterpret_cast<FileWrapperObject *>(type->tp_alloc(type, 0));
    if (!self)
        return nullptr;
    Py_INCREF(filelike);
    self->filelike = filelike;
    self->blksize = blksize;
    return reinterpret_cast<PyObject *>(self);
}

void file_wrapper_dealloc(PyObject *obj) {
    PyObject_GC_UnTrack(obj);
    Py_CLEAR(reinterpret_cast<FileWrapperObject *>(obj)->filelike);
    PyTypeObject *tp = Py_TYPE(obj);
    tp->tp_free(obj);
    Py_DECREF(tp);
}

int file_wrapper_traverse(PyObject *obj, visitproc visit, void *arg) {
    Py_VISIT(reinterpret_cast<FileWrapperObject *>(obj)->filelike);
    Py_VISIT(Py_TYPE(obj));
    return 0;
}

int file_wrapper_clear(PyObject *obj) {
    Py_CLEAR(reinterpret_cast<FileWrapperObject *>(obj)->filelike);
    return 0;
}

PyObject *file_wrapper_iternext(PyObject *obj) {
    auto *self = reinterpret_cast<FileWrapperObject *>(obj);
    if (!self->filelike)
        return nullptr;
    PyObject *data = PyObject_CallMethod(self->filelike, "read", "n", self->blksize);
    if (!data)
        return nullptr;
    if (PyObject_IsTrue(data) != 1) {
        Py_DECREF(data);
        return nullptr;  // end of file (or a falsy read): StopIteration
    }
    return data;
}

PyObject *file_wrapper_close(PyObject *obj, PyObject *) {
    auto *self = reinterpret_cast<FileWrapperObject *>(obj);
    if (self->filelike && PyObject_HasAttrString(self->filelike, "close")) {
        PyObject *r = PyObject_CallMethod(self->filelike, "close", nullptr);
        if (!r)
            return nullptr;
        Py_DECREF(r);
    }
    Py_RETURN_NONE;
}

PyMethodDef file_wrapper_methods[] = {
    {"close", file_wrapper_close, METH_NOARGS, "Closes the wrapped file-like object."},
    {nullptr, nullptr, 0, nullptr},
};

PyMemberDef file_wrapper_members[] = {
    {const_cast<char *>("filelike"), T_OBJECT, offsetof(FileWrapperObject, filelike), READONLY, nullptr},
    {const_cast<char *>("blksize"), T_PYSSIZET, offsetof(FileWrapperObject, blksize), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

PyType_Slot file_wrapper_slots[] = {
    {Py_tp_new, reinterpret_cast<void *>(file_wrapper_new)},
    {Py_tp_dealloc, reinterpret_cast<void *>(file_wrapper_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void *>(file_wrapper_traverse)},
    {Py_tp_clear, reinterpret_cast<void *>(file_wrapper_clear)},
    {Py_tp_iter, reinterpret_cast<void *>(PyObject_SelfIter)},
    {Py_tp_iternext, reinterpret_cast<void *>(file_wrapper_iternext)},
    {Py_tp_methods, file_wrapper_methods},
    {Py_tp_members, file_wrapper_members},
    {Py_tp_doc, const_cast<char *>("wsgi.file_wrapper(filelike, blksize=8192)")},
    {0, nullptr},
};

PyType_Spec file_wrapper_spec = {"mod_wsgi.FileWrapper", sizeof(FileWrapperObject), 0,
                                 Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, file_wrapper_slots};

}  // namespace

PyTypeObject *file_wrapper_type_new() {
    return reinterpret_cast<PyTypeObject *>(PyType_FromSpec(&file_wrapper_spec));
}

PyObject *file_wrapper_filelike(PyObject *wrapper) {
    return reinterpret_cast<FileWrapperObject *>(wrapper)->filelike;
}

}  // namespace modwsgi
