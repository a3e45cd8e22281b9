/* Stub: the xsmc surface espota.c uses (signatures as in Moddable's xs.h / xsmc.h, simplified to functions). */
#ifndef STUB_XSMC_H
#define STUB_XSMC_H
#include <stdint.h>
#include <stddef.h>

typedef struct xsMachineRecord xsMachine;
typedef struct { void *opaque[2]; } xsSlot;
typedef int32_t xsIntegerValue;
typedef uint32_t xsUnsignedValue;

xsSlot *stub_xsArg(xsMachine *the, int index);
xsSlot *stub_xsVar(xsMachine *the, int index);
xsSlot *stub_xsResult(xsMachine *the);
#define xsArg(i) (*stub_xsArg(the, (i)))
#define xsVar(i) (*stub_xsVar(the, (i)))
#define xsResult (*stub_xsResult(the))

void fxThrowMessage(xsMachine *the, char *path, int line, int error, const char *format, ...) __attribute__((noreturn));
#define xsUnknownError(...) fxThrowMessage(the, NULL, 0, 1, __VA_ARGS__)

xsIntegerValue stub_toInteger(xsMachine *the, xsSlot *slot);
char *stub_toString(xsMachine *the, xsSlot *slot);
void stub_setString(xsMachine *the, xsSlot *slot, const char *value);
void stub_setInteger(xsMachine *the, xsSlot *slot, xsIntegerValue value);
void stub_setNumber(xsMachine *the, xsSlot *slot, double value);
void stub_setBoolean(xsMachine *the, xsSlot *slot, int value);
void stub_setUndefined(xsMachine *the, xsSlot *slot);
void stub_setNewArray(xsMachine *the, xsSlot *slot, xsIntegerValue length);
void stub_setIndex(xsMachine *the, xsSlot *array, xsIntegerValue index, xsSlot *value);
void stub_vars(xsMachine *the, xsIntegerValue count);
void stub_getBuffer(xsMachine *the, xsSlot *slot, void **data, xsUnsignedValue *count, int writable);

#define xsmcToInteger(s) stub_toInteger(the, &(s))
#define xsmcToString(s) stub_toString(the, &(s))
#define xsmcSetString(s, v) stub_setString(the, &(s), (v))
#define xsmcSetInteger(s, v) stub_setInteger(the, &(s), (v))
#define xsmcSetNumber(s, v) stub_setNumber(the, &(s), (v))
#define xsmcSetBoolean(s, v) stub_setBoolean(the, &(s), (v))
#define xsmcSetUndefined(s) stub_setUndefined(the, &(s))
#define xsmcSetNewArray(s, n) stub_setNewArray(the, &(s), (n))
#define xsmcSetIndex(a, i, v) stub_setIndex(the, &(a), (i), &(v))
#define xsmcVars(n) stub_vars(the, (n))
#define xsmcGetBufferReadable(s, d, c) stub_getBuffer(the, &(s), (d), (c), 0)
#define xsmcGetBufferWritable(s, d, c) stub_getBuffer(the, &(s), (d), (c), 1)
#endif
