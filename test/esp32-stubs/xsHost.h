/* Stub: nothing from xsHost.h is used directly. */
