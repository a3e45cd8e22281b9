/*
 * The bench's headless Linux host (mcconfig -p x-cli-lin): creates one fixed-size XS machine from the
 * preloaded archive, runs bench/moddable/main on GLib's main loop (Moddable's Linux timers and sockets live
 * there), and prints the machine's memory meters as one line, `BENCH {json}`, when the run ends.
 * BENCH_CHUNKS (bytes) and BENCH_SLOTS (count) override the manifest's creation sizes so a bisection can try
 * machine sizes without relinking; incremental sizes stay 0 either way: the machine cannot grow, as on an ESP32.
 */
#include "xsAll.h"
#include "mc.xs.h"
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>

#define kExitOutOfMemory 3
#define kExitAborted 4

static txMachine *gMachine = NULL;
static txSize gIdleChunks = -1, gIdleSlots = -1, gBootPeakChunks = 0, gBootPeakSlots = 0;
static txSize gCreationChunks = 0, gCreationSlots = 0;

static void printString(const char *text)
{
	for (; *text; text++)
		if ((*text == '"') || (*text == '\\'))
			fprintf(stdout, "\\%c", *text);
		else if ((unsigned char)*text >= 0x20)
			fputc(*text, stdout);
}

static void printFigures(txMachine *the, int code, const char *outcome, const char *abort)
{
	txSize peakChunks = the->peakChunksSize, peakSlots = the->peakHeapCount;
	if (gIdleChunks < 0) {
		gBootPeakChunks = peakChunks;
		gBootPeakSlots = peakSlots;
	}
	fprintf(stdout, "BENCH {\"exit\":%d,\"outcome\":\"", code);
	printString(outcome);
	fprintf(stdout,
		"\",\"abort\":%s%s%s,\"creationChunks\":%ld,\"creationSlots\":%ld,"
		"\"slotBytes\":%d,\"bootPeakChunks\":%ld,\"bootPeakSlots\":%ld,\"idleChunks\":%ld,\"idleSlots\":%ld,"
		"\"peakChunks\":%ld,\"peakSlots\":%ld}\n",
		abort ? "\"" : "", abort ? abort : "null", abort ? "\"" : "",
		(long)gCreationChunks, (long)gCreationSlots, (int)sizeof(txSlot),
		(long)gBootPeakChunks, (long)gBootPeakSlots, (long)gIdleChunks, (long)gIdleSlots,
		(long)peakChunks, (long)peakSlots);
	fflush(stdout);
}

void benchExit(txMachine *the, int code, const char *outcome)
{
	printFigures(the, code, outcome, NULL);
	exit(code);
}

void fxAbort(txMachine *the, int status)
{
	printFigures(the, (XS_NOT_ENOUGH_MEMORY_EXIT == status) ? kExitOutOfMemory : kExitAborted, "aborted", fxAbortString(status));
	exit((XS_NOT_ENOUGH_MEMORY_EXIT == status) ? kExitOutOfMemory : kExitAborted);
}

void xs_bench_env(xsMachine *the)
{
	const char *value = getenv(xsToString(xsArg(0)));
	if (value)
		xsResult = xsString((char *)value);
}

void xs_bench_mark_idle(xsMachine *the)
{
	gBootPeakChunks = the->peakChunksSize;
	gBootPeakSlots = the->peakHeapCount;
	xsCollectGarbage();
	gIdleChunks = the->currentChunksSize;
	gIdleSlots = the->currentHeapCount;
	the->peakChunksSize = the->currentChunksSize;
	the->peakHeapCount = the->currentHeapCount;
}

void xs_bench_finish(xsMachine *the)
{
	benchExit(the, xsToInteger(xsArg(0)), xsToString(xsArg(1)));
}

static txSize sizeFromEnv(const char *name, txSize fallback)
{
	const char *value = getenv(name);
	return value ? (txSize)strtol(value, NULL, 10) : fallback;
}

int main(int argc, char *argv[])
{
	static txMachine root;
	txMachine *machine = &root;
	txPreparation *preparation = xsPreparation();
	txCreation creation = preparation->creation;
	int error = 0;

	c_memset(machine, 0, sizeof(txMachine));
	machine->preparation = preparation;
	machine->keyArray = preparation->keys;
	machine->keyCount = (txID)preparation->keyCount + (txID)preparation->creation.initialKeyCount;
	machine->keyIndex = (txID)preparation->keyCount;
	machine->nameModulo = preparation->nameModulo;
	machine->nameTable = preparation->names;
	machine->symbolModulo = preparation->symbolModulo;
	machine->symbolTable = preparation->symbols;
	machine->stack = &preparation->stack[0];
	machine->stackBottom = &preparation->stack[0];
	machine->stackTop = &preparation->stack[preparation->stackCount];
	machine->firstHeap = &preparation->heap[0];
	machine->freeHeap = &preparation->heap[preparation->heapCount - 1];
	machine->aliasCount = (txID)preparation->aliasCount;

	creation.initialChunkSize = gCreationChunks = sizeFromEnv("BENCH_CHUNKS", creation.initialChunkSize);
	creation.initialHeapCount = gCreationSlots = sizeFromEnv("BENCH_SLOTS", creation.initialHeapCount);
	creation.incrementalChunkSize = 0;
	creation.incrementalHeapCount = 0;
	machine = gMachine = fxCloneMachine(&creation, machine, "bench", NULL);

	GMainLoop *loop = g_main_loop_new(NULL, FALSE);
	xsBeginHost(machine);
	{
		xsVars(1);
		xsTry {
			xsResult = xsAwaitImport(((txString)preparation->main), XS_IMPORT_NAMESPACE);
		}
		xsCatch {
			fprintf(stderr, "### %s\n", xsToString(xsException));
			error = 1;
		}
	}
	xsEndHost(machine);
	if (error)
		benchExit(machine, 1, "main threw");
	g_main_loop_run(loop);	// ends only through Host.finish, a restart or an abort, which exit the process
	return 0;
}

// The bench builds no resources (x-cli-lin has none): Resource.exists() is false, and the HTTP adapter opens
// Resources only for pinned CAs, which the plain-HTTP bench has none of.
const void *mcGetResource(xsMachine *the, char *path, size_t *size)
{
	*size = 0;
	return NULL;
}
