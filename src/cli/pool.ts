// Imported first by main.ts: libuv sizes its thread pool when it is first used, and
// packing image chunks, file reads and writes all share it (the default of 4 is too few
// for three chunks packing while the next ones are read).
process.env.UV_THREADPOOL_SIZE ??= '8';
