import $protobuf from "protobufjs/minimal.js";

// Imported before the generated code is evaluated: the generated types promise plain numbers for
// 64-bit fields (--force-number), but with Long available protobufjs decodes them as Long
// objects (so `Date.now() - report.timeMs` is NaN) and even the defaults of absent fields are
// Long zeros (truthy). Milliseconds and sequence numbers stay far below 2^53.
$protobuf.util.Long = undefined as unknown as typeof $protobuf.util.Long;
$protobuf.configure();
