// Bench-only host functions of the headless Linux runtime (host-lin.c): environment, the XS memory meters,
// and the end of a run. Never part of the ESP32 build.
export default class Host {
	static env(name) @ "xs_bench_env";
	/** Collects garbage, then takes the live chunks and slots as the idle baseline and restarts the peaks there. */
	static markIdle() @ "xs_bench_mark_idle";
	/** Prints the run's figures and exits the process with this code. */
	static finish(code, outcome) @ "xs_bench_finish";
}
