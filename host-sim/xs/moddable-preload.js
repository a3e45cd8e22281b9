// Freezes the XS machine the way the Moddable linker does after preload, so the agent under xsnap meets the
// same frozen built-ins as on the ESP32. Evaluated (as a script) by xs-worker.ts before anything else.
//
// What xsl freezes (Moddable SDK 8.2.3, xs/tools/xsl.c and xslSlot.c):
// - xsl.c:271 `freezeFlag = stripFlag || firstPreload`: on whenever anything is preloaded or stripped, i.e. every
//   mcconfig build (examples/manifest_base.json has "strip": "*", manifest_net.json preloads "setup/network").
// - xsl.c:912-990 fxFreezeBuiltIns: Object.freeze on Atomics, JSON, Math, Reflect and on every intrinsic
//   prototype (FREEZE_LIST below), each typed array's prototype and Array.prototype[Symbol.unscopables].
// - xslSlot.c:643-700 fxPrepareHeap/fxPrepareInstance: every function in the heap (built-ins and the functions of
//   preloaded modules, class constructors included) is frozen, and so is the `prototype` of each constructor.
//   Frozen there means every property non-configurable, data properties non-writable, the object non-extensible:
//   Object.freeze, one level deep. The global object itself is not frozen (globals stay assignable).
// Not reproduced: intrinsics JavaScript cannot reach (AsyncFromSyncIteratorPrototype, HostPrototype,
// ModulePrototype, ProxyPrototype, TransferPrototype, the for-in enumerator), and what xsl freezes of preloaded
// modules (their Map/Set/ArrayBuffer instances, environments, closures holding functions): manifest.json
// preloads none of the agent's modules.
(function addModdableBuiltIns() {
  // Built-ins every Moddable XS has and xsnap (built with mxCESU8) lacks, installed before the freeze as the
  // engine has them: ArrayBuffer.fromString (xs/sources/xsDataView.c fx_ArrayBuffer_fromString) and
  // String.fromArrayBuffer (xs/sources/xsString.c fx_String_fromArrayBuffer), UTF-8 both ways.
  "use strict";
  const define = (target, name, value) => Object.defineProperty(target, name, { value, writable: true, configurable: true, enumerable: false });
  if (typeof ArrayBuffer.fromString !== "function") {
    define(ArrayBuffer, "fromString", function fromString(s) {
      const bytes = new TextEncoder().encode(String(s));
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    });
  }
  if (typeof String.fromArrayBuffer !== "function") {
    define(String, "fromArrayBuffer", function fromArrayBuffer(buffer) {
      if (!(buffer instanceof ArrayBuffer)) throw new TypeError("String.fromArrayBuffer: not an ArrayBuffer");
      return new TextDecoder().decode(new Uint8Array(buffer));
    });
  }
})();
(function freezeLikeModdablePreload() {
  "use strict";
  const getProto = Object.getPrototypeOf;
  const argumentsSloppy = Function("return arguments")();
  const argumentsStrict = (function () { "use strict"; return arguments; })();
  const asyncGeneratorFunction = getProto(async function* () {});
  const generatorFunction = getProto(function* () {});
  const arrayIterator = getProto([][Symbol.iterator]());
  const typedArray = getProto(Uint8Array.prototype);
  const optional = (name) => (typeof globalThis[name] === "function" ? [globalThis[name].prototype] : []);

  // fxFreezeBuiltIns, in xsl.c's order.
  const FREEZE_LIST = [
    Atomics, JSON, Math, Reflect,
    AggregateError.prototype, getProto(argumentsSloppy), getProto(argumentsStrict), ArrayBuffer.prototype,
    arrayIterator, Array.prototype, getProto(async function () {}), asyncGeneratorFunction,
    asyncGeneratorFunction.prototype, getProto(asyncGeneratorFunction.prototype), BigInt.prototype,
    Boolean.prototype, ...optional("Compartment"), DataView.prototype, Date.prototype, Error.prototype,
    EvalError.prototype, FinalizationRegistry.prototype, Function.prototype, generatorFunction,
    generatorFunction.prototype, getProto(arrayIterator), getProto(new Map()[Symbol.iterator]()), Map.prototype,
    Number.prototype, Object.prototype, Promise.prototype, RangeError.prototype, ReferenceError.prototype,
    RegExp.prototype, getProto("".matchAll(/x/g)), getProto(new Set()[Symbol.iterator]()), Set.prototype,
    ...optional("SharedArrayBuffer"), getProto(""[Symbol.iterator]()), String.prototype, Symbol.prototype,
    SyntaxError.prototype, typedArray, TypeError.prototype, URIError.prototype, WeakMap.prototype,
    WeakRef.prototype, WeakSet.prototype,
    ...optional("SuppressedError"), ...optional("DisposableStack"), ...optional("AsyncDisposableStack"),
    Array.prototype[Symbol.unscopables],
  ];
  const TYPED_ARRAYS = [BigInt64Array, BigUint64Array, Float32Array, Float64Array, Int8Array, Int16Array, Int32Array,
    Uint8Array, Uint8ClampedArray, Uint16Array, Uint32Array];
  for (const t of TYPED_ARRAYS) FREEZE_LIST.push(t.prototype);
  if (typeof globalThis.Float16Array === "function") FREEZE_LIST.push(globalThis.Float16Array.prototype);

  // fxPrepareHeap: every function the machine holds when preload ends, and each constructor's prototype. Here,
  // before any of our code runs, those are the functions reachable from the global object and the list above.
  const isConstructor = (f) => {
    try {
      Reflect.construct(String, [], f); // checks [[Construct]] without calling f
      return true;
    } catch {
      return false;
    }
  };
  const seen = new Set();
  const toVisit = [globalThis, ...FREEZE_LIST];
  const functions = [];
  while (toVisit.length > 0) {
    const o = toVisit.pop();
    if ((typeof o !== "object" && typeof o !== "function") || o === null || seen.has(o)) continue;
    seen.add(o);
    if (typeof o === "function") functions.push(o);
    toVisit.push(getProto(o));
    for (const key of Reflect.ownKeys(o)) {
      const d = Reflect.getOwnPropertyDescriptor(o, key);
      if ("value" in d) toVisit.push(d.value);
      else toVisit.push(d.get, d.set);
    }
  }
  for (const f of functions) {
    Object.freeze(f);
    if (isConstructor(f) && f.prototype !== null && typeof f.prototype === "object") Object.freeze(f.prototype);
  }
  for (const o of FREEZE_LIST) Object.freeze(o);
})();
