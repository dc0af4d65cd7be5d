// meterlab virtual board: one board's MicroPython, run for real (the WebAssembly port) under Node.js.
//
// What a real board has, and what stands in for it here:
//   USB serial (REPL + board protocol)  -> a loopback TCP port, opened by pyserial as socket://HOST:PORT
//   flash filesystem                    -> the VM's /flash, written through to STATE/flash on the host
//   power cycle                         -> kill this process and start it again with the same --state
//   soft reset (Ctrl-D at the REPL)     -> a fresh VM (the port cannot reboot itself)
//   ESP-NOW radio                       -> the host's virtual radio broker (meterlab virtual radio)
//   GC heap of the board                -> the VM's heap, capped at the board description's size
//
// The firmware and the REPL share the serial port as on a board: while main.py runs, every byte goes
// to the firmware, which never sees a 0x03 inside a frame (the framing escapes it) and treats a 0x03
// as "drop to the REPL" (hal.break_to_repl). This file never decides that; it only never hands the
// firmware bytes past a 0x03, so what follows it reaches the REPL just as on a board.
//
// Usage (normally through `meterlab virtual start`):
//   node board.mjs --state DIR --heap BYTES --listen HOST:PORT [--board NAME] [--family esp32|rp2040]
//                  [--radio HOST:PORT --mac aa:bb:cc:dd:ee:ff] [--uid 16-HEX-DIGITS]
//                  [--no-rng yes]   (a board without a usable random source: its keys are injected)
//                  [--load-watts W]   (the ESME's simulated load: W watts steady, not a household's day)
//                  [--clock REAL:START:SCALE]   (the board's clock read START at Unix time REAL and runs
//                  SCALE times as fast, and a gas meter's sleeps are that much shorter: a simulated day
//                  in minutes; boards given the same value agree on the time)
//                  [--home-listen HOST:PORT]   (the meter's in-home port: the consumer's side, where
//                  consents are granted; a second loopback TCP port, framed like the serial port, no REPL)
//   node board.mjs --state DIR --heap BYTES --test MODULE     (run firmware tests, then exit; see runTests)
//   node board.mjs --state DIR --heap BYTES --script FILE     (run an async script, then exit; see runScript)
// Any mode also takes --power-cut-after-writes N: the power fails just before the Nth change this
// process would make to the flash (a file closed after writing, a rename, a remove, a mkdir or rmdir),
// so that change and everything after it never happen: a test steps N through every write of an update.
// With METERLAB_HEAP_TRACE set in its environment, the board logs every new peak of its live heap with
// the modules loaded then (the power-off line always gives the last peak's).

import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import v8 from "node:v8";
import vmContext from "node:vm";

const READY_PREFIX = "meterlab-virtual-board ready";
const RADIO_MAX_FRAME = 250;
const TMP_SUFFIX = ".vboard-tmp";

// ---------------------------------------------------------------------------------------------------
// Command line

function parseArgs(argv) {
  const args = { board: "virtual", family: "esp32", radio: null, mac: null };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i];
    const value = argv[i + 1];
    if (!key.startsWith("--") || value === undefined) fail(`bad argument ${key}`);
    args[key.slice(2)] = value;
    i++;
  }
  for (const required of args.test || args.script ? ["state", "heap"] : ["state", "heap", "listen"]) {
    if (!args[required]) fail(`--${required} is required`);
  }
  args.heap = parseInt(args.heap, 10);
  if (!(args.heap >= 16 * 1024)) fail("--heap must be at least 16384 bytes");
  if (args.uid !== undefined && !/^[0-9a-fA-F]{16}$/.test(args.uid)) fail("--uid must be 16 hex digits");
  if (args["load-watts"] !== undefined && !(parseInt(args["load-watts"], 10) >= 0)) fail("--load-watts must be a number of watts");
  if (args.clock !== undefined) {
    const [real, start, scale] = args.clock.split(":").map(Number);
    if (!(real >= 0 && start >= 0 && scale >= 1 && scale <= 100000)) {
      fail("--clock must be REAL:START:SCALE (Unix seconds, Unix seconds, 1 to 100000)");
    }
    args.clockPair = [real, start, scale];
  }
  if (args["power-cut-after-writes"] !== undefined) {
    args.powerCut = parseInt(args["power-cut-after-writes"], 10);
    if (!(args.powerCut >= 1)) fail("--power-cut-after-writes must be a whole number from 1");
  }
  return args;
}

function fail(message) {
  process.stderr.write(`virtual board: ${message}\n`);
  process.exit(2);
}

function log(message) {
  process.stderr.write(`[vboard ${new Date().toISOString().slice(11, 23)}] ${message}\n`);
}

function hostPort(text) {
  const cut = text.lastIndexOf(":");
  if (cut < 0) fail(`expected HOST:PORT, got ${text}`);
  return [text.slice(0, cut), parseInt(text.slice(cut + 1), 10)];
}

// ---------------------------------------------------------------------------------------------------
// The board's RAM.
//
// The VM's GC heap starts at the board's size. This port cannot collect garbage in the middle of a
// call from JavaScript (it cannot scan the wasm stack for roots), only when the call returns to the
// top level; until then it grows its heap instead. So a hard cap would fail where a board would simply
// collect. What a board really cannot exceed is its live data, and that is what the harness measures:
// after every top-level collection (HEAP_CHECK_MS, and after each test in --run mode) the live heap
// must fit the board's, or the board is out of memory: the firmware is stopped, loudly, as an uncaught
// MemoryError would stop it.

const HEAP_CHECK_MS = 100;
const PARENT_CHECK_MS = 500;
const { loadMicroPython } = await import("@micropython/micropython-webassembly-pyscript");

// Every Python object this port hands to JavaScript (a callback, the resolver of an awaited promise) is
// kept alive in the MicroPython heap until JavaScript's garbage collector finalizes its proxy. Node
// collects lazily, so under a flood of serial frames those proxies would pile up as "live" Python heap a
// board never holds. So a measurement that would set a new peak is taken again after a JavaScript
// collection and its finalizers (HeapMonitor.settle): the peak and the out-of-memory verdict are the
// board's own live data.
v8.setFlagsFromString("--expose-gc");
const collectJsGarbage = vmContext.runInNewContext("gc");

class HeapMonitor {
  constructor(vm, heapBytes) {
    this.gc = vm.pyimport("gc");
    this.heapBytes = heapBytes;
    this.live = 0;
    this.peakLive = 0;
    this.peakModules = "";  // the firmware modules loaded when the peak was measured
    this.listModules = () => {
      vm.runPython("_peak_modules = ' '.join(sorted(__import__('sys').modules))");
      const names = vm.globals.get("_peak_modules");
      vm.runPython("del _peak_modules");  // or the next measurement would count it
      return names;
    };
  }

  // A call from JavaScript is a top-level call: the collection it asks for runs when it returns.
  measure() {
    this.gc.collect();
    this.live = this.gc.mem_alloc();
    if (this.live > this.peakLive) {
      this.peakLive = this.live;
      this.peakModules = this.listModules();
      if (process.env.METERLAB_HEAP_TRACE) log(`new peak live heap ${this.live} bytes; modules loaded: ${this.peakModules}`);
    }
    return this.live;
  }

  // measure(), but a new peak only counts once JavaScript has let go of the proxies it held.
  async settle() {
    this.gc.collect();
    const live = this.gc.mem_alloc();
    if (live <= this.peakLive) {
      this.live = live;
      return live;
    }
    collectJsGarbage();
    await new Promise((resolve) => setTimeout(resolve, 0));  // the finalizers run as tasks after the GC
    await new Promise((resolve) => setImmediate(resolve));
    return this.measure();
  }

  get exceeded() {
    return this.live > this.heapBytes;
  }
}

// ---------------------------------------------------------------------------------------------------
// errno: Emscripten numbers its errors its own way (ENOENT is 44); MicroPython, mpremote and the
// firmware expect MicroPython's (Linux) numbers. Translate every error the filesystem raises.

const EMSCRIPTEN_TO_MICROPYTHON_ERRNO = new Map([
  [63, 1],   // EPERM
  [44, 2],   // ENOENT
  [60, 6],   // ENXIO
  [29, 5],   // EIO
  [8, 9],    // EBADF
  [6, 11],   // EAGAIN
  [48, 12],  // ENOMEM
  [2, 13],   // EACCES
  [10, 16],  // EBUSY
  [20, 17],  // EEXIST
  [75, 18],  // EXDEV
  [43, 19],  // ENODEV
  [54, 20],  // ENOTDIR
  [31, 21],  // EISDIR
  [28, 22],  // EINVAL
  [41, 23],  // ENFILE
  [33, 24],  // EMFILE
  [22, 27],  // EFBIG
  [51, 28],  // ENOSPC
  [70, 29],  // ESPIPE
  [69, 30],  // EROFS
  [37, 36],  // ENAMETOOLONG
  [52, 38],  // ENOSYS
  [55, 39],  // ENOTEMPTY
  [32, 40],  // ELOOP
  [138, 95], // EOPNOTSUPP
]);

// ---------------------------------------------------------------------------------------------------
// Flash: the VM's /flash, written through to STATE/flash so that a killed process keeps every file that
// was closed, renamed or removed before the kill, and nothing else: like a flash filesystem, a file
// still open for writing at a power cut is lost, and a rename is atomic (it is a host rename).

class Flash {
  constructor(hostRoot, powerCut = undefined) {
    this.hostRoot = path.resolve(hostRoot);
    fs.mkdirSync(this.hostRoot, { recursive: true });
    this.powerCut = powerCut;  // cut before the Nth change (see --power-cut-after-writes), or undefined
    this.changes = 0;
  }

  // Called before each change reaches the host copy: the power fails here on the chosen change.
  change(what) {
    this.changes++;
    if (this.changes === this.powerCut) {
      log(`power cut before flash change ${this.changes}: ${what}`);
      process.kill(process.pid, "SIGKILL");
    }
  }

  hostPath(vmPath) {
    if (vmPath !== "/flash" && !vmPath.startsWith("/flash/")) return null;
    return path.join(this.hostRoot, vmPath.slice("/flash".length));
  }

  // Copy the host folder into a fresh VM's /flash, leaving out half-written temporaries.
  load(FS) {
    FS.mkdir("/flash");
    const walk = (hostDir, vmDir) => {
      for (const entry of fs.readdirSync(hostDir, { withFileTypes: true })) {
        const hostEntry = path.join(hostDir, entry.name);
        const vmEntry = `${vmDir}/${entry.name}`;
        if (entry.name.endsWith(TMP_SUFFIX)) {
          fs.rmSync(hostEntry, { force: true });
        } else if (entry.isDirectory()) {
          FS.mkdir(vmEntry);
          walk(hostEntry, vmEntry);
        } else if (entry.isFile()) {
          FS.writeFile(vmEntry, fs.readFileSync(hostEntry));
        }
      }
    };
    walk(this.hostRoot, "/flash");
  }

  writeFile(vmPath, data) {
    const target = this.hostPath(vmPath);
    if (!target) return;
    const tmp = target + TMP_SUFFIX;
    const fd = fs.openSync(tmp, "w");
    try {
      fs.writeSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, target);
  }

  // Wrap the FS calls that the VM's syscalls make: translate errno, and mirror each change to the host.
  install(FS) {
    const flash = this;
    const wrap = (name, after) => {
      const original = FS[name];
      FS[name] = function (...args) {
        let result;
        try {
          result = original.apply(this, args);
        } catch (error) {
          if (error && error.name === "ErrnoError" && !error.mappedToMicroPython) {
            error.errno = EMSCRIPTEN_TO_MICROPYTHON_ERRNO.get(error.errno) ?? error.errno;
            error.mappedToMicroPython = true;
          }
          throw error;
        }
        if (after) {
          try {
            after(args, result);
          } catch (error) {
            log(`flash write-through of ${name}(${args[0]}) failed: ${error.message}`);
          }
        }
        return result;
      };
    };
    const O_ACCMODE = 3;
    wrap("close", ([stream]) => {
      if (stream && stream.path && (stream.flags & O_ACCMODE) !== 0 && FS.isFile(stream.node.mode)) {
        if (flash.hostPath(stream.path)) flash.change(`write ${stream.path}`);
        flash.writeFile(stream.path, FS.readFile(stream.path));
      }
    });
    wrap("rename", ([from, to]) => {
      const hostFrom = flash.hostPath(from);
      const hostTo = flash.hostPath(to);
      if (hostFrom || hostTo) flash.change(`rename ${from} ${to}`);
      if (hostFrom && hostTo) fs.renameSync(hostFrom, hostTo);
      else if (hostTo) flash.writeFile(to, FS.readFile(to));
      else if (hostFrom) fs.rmSync(hostFrom, { recursive: true, force: true });
    });
    wrap("unlink", ([vmPath]) => {
      const target = flash.hostPath(vmPath);
      if (target) flash.change(`remove ${vmPath}`);
      if (target) fs.rmSync(target, { force: true });
    });
    wrap("mkdir", ([vmPath]) => {
      const target = flash.hostPath(vmPath);
      if (target) flash.change(`mkdir ${vmPath}`);
      if (target) fs.mkdirSync(target, { recursive: true });
    });
    wrap("rmdir", ([vmPath]) => {
      const target = flash.hostPath(vmPath);
      if (target) flash.change(`rmdir ${vmPath}`);
      if (target) fs.rmdirSync(target);
    });
    for (const name of ["open", "stat", "lstat", "chdir", "readdir", "truncate", "ftruncate",
                        "llseek", "read", "write", "statfs", "readlink", "utime", "chmod"]) {
      if (typeof FS[name] === "function") wrap(name, null);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// The USB serial port, as a loopback TCP server. One host at a time, as with a real port: a new
// connection replaces the old one (the cable moved to another host).

class SerialPort {
  constructor(onData) {
    this.socket = null;
    this.onData = onData;
    this.server = net.createServer((socket) => this.attach(socket));
  }

  listen(host, port) {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => resolve(this.server.address()));
    });
  }

  attach(socket) {
    if (this.socket) {
      log("serial: new host connected, dropping the previous one");
      this.socket.destroy();
    }
    socket.setNoDelay(true);
    this.socket = socket;
    socket.on("data", (data) => this.onData(data));
    socket.on("error", () => {});
    socket.on("close", () => {
      if (this.socket === socket) this.socket = null;
    });
  }

  write(bytes) {
    if (this.socket && !this.socket.destroyed) this.socket.write(bytes);
  }
}

// ---------------------------------------------------------------------------------------------------
// The radio: a client of the host's broker (host/meterlab/boards/radio.py documents the protocol).

const RADIO_HELLO = 0x01, RADIO_SEND = 0x02, RADIO_DELIVER = 0x03, RADIO_STATUS = 0x04,
  RADIO_WELCOME = 0x05, RADIO_ERROR = 0x12;
const RADIO_STATUS_LOST = 1;

class Radio {
  constructor(hostAndPort, mac) {
    this.mac = mac;
    [this.host, this.port] = hostPort(hostAndPort);
    this.received = [];
    this.receivers = [];
    this.pendingStatus = new Map();
    this.nextSequence = 0;
    this.buffer = Buffer.alloc(0);
    this.socket = null;
  }

  connect() {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ host: this.host, port: this.port });
      socket.once("error", (error) => reject(new Error(`radio ${this.host}:${this.port}: ${error.message}`)));
      socket.on("connect", () => {
        this.socket = socket;
        socket.setNoDelay(true);
        this.sendMessage(Buffer.concat([Buffer.from([RADIO_HELLO]), this.mac]));
      });
      socket.on("data", (data) => this.onData(data, resolve));
      socket.on("close", () => {
        log("radio: broker connection closed");
        this.socket = null;
        for (const resolveStatus of this.pendingStatus.values()) resolveStatus(RADIO_STATUS_LOST);
        this.pendingStatus.clear();
      });
    });
  }

  sendMessage(body) {
    const header = Buffer.alloc(2);
    header.writeUInt16BE(body.length);
    this.socket.write(Buffer.concat([header, body]));
  }

  onData(data, onWelcome) {
    this.buffer = Buffer.concat([this.buffer, data]);
    while (this.buffer.length >= 2) {
      const length = this.buffer.readUInt16BE(0);
      if (this.buffer.length < 2 + length) break;
      const body = this.buffer.subarray(2, 2 + length);
      this.buffer = this.buffer.subarray(2 + length);
      this.onMessage(body, onWelcome);
    }
  }

  onMessage(body, onWelcome) {
    const type = body[0];
    if (type === RADIO_WELCOME) {
      onWelcome();
    } else if (type === RADIO_DELIVER) {
      const frame = { src: body.subarray(1, 7).toString("hex"), data: new Uint8Array(body.subarray(7)) };
      const receiver = this.receivers.shift();
      if (receiver) receiver(frame);
      else if (this.received.length < 64) this.received.push(frame); // a bounded queue, like ESP-NOW's
    } else if (type === RADIO_STATUS) {
      const resolveStatus = this.pendingStatus.get(body[1]);
      this.pendingStatus.delete(body[1]);
      if (resolveStatus) resolveStatus(body[2]);
    } else if (type === RADIO_ERROR) {
      log(`radio: broker error: ${body.subarray(1).toString()}`);
    }
  }

  send(peerHex, data) {
    if (data.length === 0 || data.length > RADIO_MAX_FRAME) {
      throw new Error(`radio frame of ${data.length} bytes: ESP-NOW carries 1 to ${RADIO_MAX_FRAME}`);
    }
    if (!this.socket) return Promise.resolve(RADIO_STATUS_LOST);
    const sequence = this.nextSequence;
    this.nextSequence = (this.nextSequence + 1) & 0xff;
    const body = Buffer.concat([Buffer.from([RADIO_SEND, sequence]), Buffer.from(peerHex, "hex"), data]);
    return new Promise((resolve) => {
      this.pendingStatus.set(sequence, resolve);
      this.sendMessage(body);
    });
  }

  recv() {
    if (this.received.length) return Promise.resolve(this.received.shift());
    return new Promise((resolve) => this.receivers.push(resolve));
  }

  // A soft reset drops the RAM of the old VM; frames it was waiting for go to the new one.
  forgetWaiters() {
    this.receivers = [];
  }
}

// ---------------------------------------------------------------------------------------------------
// The board: a VM, its serial port, its modes.

// Run in each fresh VM before boot.py: the board's filesystem is /flash (cwd and import path), and
// os.ilistdir gives sizes as a board's littlefs/FAT does (this port's POSIX VFS leaves them out, so
// `mpremote fs ls` would show 0 for every file). Names are kept out of __main__.
const BOARD_SETUP_PY = `
def _board_setup():
    import os, sys
    os.chdir('/flash')
    sys.path[:] = ['', '/flash/lib', '.frozen']
    posix_ilistdir = os.ilistdir
    def ilistdir(path='.'):
        sep = b'/' if isinstance(path, bytes) else '/'
        for entry in posix_ilistdir(path):
            size = 0
            if entry[1] == 0x8000:
                try:
                    size = os.stat(path + sep + entry[0])[6]
                except OSError:
                    pass
            yield (entry[0], entry[1], entry[2], size)
    os.ilistdir = ilistdir
_board_setup()
del _board_setup
`;

const MODE_BOOT = "boot", MODE_FIRMWARE = "firmware", MODE_FRIENDLY = "friendly", MODE_RAW = "raw";
const CTRL_A = 0x01, CTRL_B = 0x02, CTRL_C = 0x03, CTRL_D = 0x04, CTRL_E = 0x05;
const PYEXEC_FORCED_EXIT = 0x100;

class Board {
  constructor(args) {
    this.args = args;
    this.flash = new Flash(path.join(args.state, "flash"), args.powerCut);
    this.serial = new SerialPort((data) => this.onSerialInput(data));
    this.radio = args.radio ? new Radio(args.radio, macBytes(args.mac)) : null;
    this.mode = MODE_BOOT;
    this.generation = 0;
    this.vm = null;
    this.firmwareInput = [];   // Buffers waiting for the firmware to read them
    this.firmwareReader = null;
    this.home = args["home-listen"] ? new SerialPort((data) => this.onHomeInput(data)) : null;
    this.homeInput = [];
    this.gpio = {};
    this.homeReader = null;
    this.replInput = [];       // bytes that arrived while the board was busy booting
    this.rawLineLength = 0;
    this.rawPasteProbe = null;
    this.muteOutput = false;
  }

  async start() {
    const [host, port] = hostPort(this.args.listen);
    const address = await this.serial.listen(host, port);
    if (this.radio) await this.radio.connect();
    await this.boot({ runMain: true });
    setInterval(() => this.checkHeap().catch((error) => log(`heap check failed: ${error.message}`)), HEAP_CHECK_MS).unref();
    // A board belongs to the meterlab process that started it (a terminal's `meterlab virtual start`, a
    // test, the demo): when that one dies, even by SIGKILL, the board loses power too.
    const parent = process.ppid;
    setInterval(() => {
      if (process.ppid !== parent) {
        log("the process that started this board is gone: power off");
        process.exit(0);
      }
    }, PARENT_CHECK_MS).unref();
    const radio = this.radio ? ` radio=${this.args.mac}` : "";
    let home = "";
    if (this.home) {
      const [homeHost, homePort] = hostPort(this.args["home-listen"]);
      const homeAddress = await this.home.listen(homeHost, homePort);
      home = ` home=socket://${homeAddress.address}:${homeAddress.port}`;
    }
    process.stdout.write(`${READY_PREFIX} serial=socket://${address.address}:${address.port}${radio}${home}\n`);
  }

  output(bytes) {
    if (this.muteOutput) return;
    this.serial.write(bytes);
  }

  // Board print() output is "cooked" (\n becomes \r\n) on a real port; the REPL writes \r\n itself.
  cookedOutput() {
    let previous = 0;
    return (chunk) => {
      const out = [];
      for (const byte of chunk) {
        if (byte === 0x0a && previous !== 0x0d) out.push(0x0d);
        out.push(byte);
        previous = byte;
      }
      this.output(Buffer.from(out));
    };
  }

  async boot({ runMain, raw = false }) {
    this.generation++;
    const generation = this.generation;
    this.mode = MODE_BOOT;
    this.firmwareInput = [];
    this.firmwareReader = null;
    if (this.radio) this.radio.forgetWaiters();
    const write = this.cookedOutput();
    const vm = await loadMicroPython({
      heapsize: this.args.heap, linebuffer: false, stdout: write, stderr: write,
    });
    this.flash.load(vm.FS);
    this.flash.install(vm.FS);
    vm.registerJsModule("vboard", this.jsModule(generation));
    this.vm = vm;
    this.heap = new HeapMonitor(vm, this.args.heap);
    vm.runPython(BOARD_SETUP_PY);
    this.runFile("boot.py");
    if (runMain && this.fileExists("main.py")) {
      this.firmwareStarted = false;
      this.runFile("main.py");
      if (this.firmwareStarted && this.generation === generation && this.mode === MODE_BOOT) {
        this.heap.measure();
        this.mode = MODE_FIRMWARE;
        log("firmware running");
        this.drainReplInput();
        return;
      }
    }
    if (this.generation === generation && this.mode === MODE_BOOT) this.enterRepl(raw);
  }

  async checkHeap() {
    if (this.mode === MODE_BOOT || !this.heap || this.checkingHeap) return;
    this.checkingHeap = true;
    const heap = this.heap;  // a soft reset during the wait brings another VM and another monitor
    try {
      await heap.settle();
    } finally {
      this.checkingHeap = false;
    }
    if (this.mode === MODE_BOOT || heap !== this.heap || !heap.exceeded) return;
    const message = `MemoryError: live heap ${this.heap.live} bytes exceeds this board's ${this.args.heap}`;
    log(`out of memory: ${message}; firmware stopped`);
    this.output(Buffer.from(`\r\n${message}\r\n`));
    this.softReset(false, { runMain: false });
  }

  fileExists(name) {
    try {
      this.vm.FS.stat(`/flash/${name}`);
      return true;
    } catch {
      return false;
    }
  }

  // Run a file as MicroPython runs boot.py and main.py: in __main__, a traceback on error.
  runFile(name) {
    if (!this.fileExists(name)) return;
    try {
      this.vm.runPython(`exec(compile(open(${JSON.stringify(name)}).read(), ${JSON.stringify(name)}, "exec"))`);
    } catch (error) {
      if (error.name !== "PythonError") throw error;
      this.output(Buffer.from(`Traceback: ${name}: ${error.type}\r\n${error.message.replace(/\n/g, "\r\n")}`));
    }
  }

  enterRepl(raw) {
    this.mode = MODE_FRIENDLY;
    this.muteOutput = raw;
    this.vm.replInit();
    this.muteOutput = false;
    this.rawLineLength = 0;
    if (raw) this.feedRepl(CTRL_A);
    this.drainReplInput();
  }

  drainReplInput() {
    const pending = this.replInput;
    this.replInput = [];
    if (pending.length) this.onSerialInput(Buffer.from(pending));
  }

  jsModule(generation) {
    const board = this;
    const current = () => board.generation === generation;
    return {
      info: () => JSON.stringify({
        board: board.args.board, family: board.args.family, heap: board.args.heap,
        mac: board.radio ? board.args.mac : null, uid: board.args.uid || null, virtual: true,
        rng: board.args["no-rng"] !== "yes", home: Boolean(board.home),
        load_watts: board.args["load-watts"] !== undefined ? parseInt(board.args["load-watts"], 10) : null,
        clock: board.args.clockPair || null,
      }),
      // The board's hardware RNG.
      random_hex: (n) => crypto.randomBytes(n).toString("hex"),
      // Live heap after the harness's last top-level collection (see HeapMonitor).
      heap_live: () => (current() ? board.heap.live : 0),
      firmware_started: () => {
        if (current()) board.firmwareStarted = true;
      },
      firmware_stopped: (reason) => {
        if (!current() || board.mode !== MODE_FIRMWARE) return;
        log(`firmware stopped (${reason}); REPL`);
        // What arrived after the break is the REPL's, as it would be still unread in a board's stdin.
        const unread = Buffer.concat(board.firmwareInput);
        board.firmwareInput = [];
        board.firmwareReader = null;
        board.enterRepl(false);
        if (unread.length) board.onSerialInput(unread);
      },
      serial_read: () => {
        if (!current()) return new Promise(() => {});
        if (board.firmwareInput.length) return Promise.resolve(board.takeFirmwareInput());
        return new Promise((resolve) => {
          board.firmwareReader = resolve;
        });
      },
      serial_write: (hex) => {
        if (current()) board.serial.write(Buffer.from(hex, "hex"));
      },
      home_read: () => {
        if (!current() || !board.home) return new Promise(() => {});
        if (board.homeInput.length) return Promise.resolve(new Uint8Array(Buffer.concat(board.homeInput.splice(0))));
        return new Promise((resolve) => {
          board.homeReader = resolve;
        });
      },
      home_write: (hex) => {
        if (current() && board.home) board.home.write(Buffer.from(hex, "hex"));
      },
      // An output pin (the supply relay): its level goes to STATE/gpio.json, as a lab would probe it.
      gpio_write: (name, value) => {
        if (!current() || board.gpio[name] === (value ? 1 : 0)) return;  // a pin set again to its level
        board.gpio[name] = value ? 1 : 0;
        const target = path.join(board.args.state, "gpio.json");
        fs.writeFileSync(target + ".tmp", JSON.stringify(board.gpio) + "\n");
        fs.renameSync(target + ".tmp", target);
        log(`gpio ${name} = ${value ? 1 : 0}`);
      },
      radio_send: (peerHex, dataHex) => {
        if (!current()) return Promise.resolve(RADIO_STATUS_LOST);
        if (!board.radio) throw new Error("this virtual board has no radio (start it with --radio)");
        return board.radio.send(peerHex, Buffer.from(dataHex, "hex"));
      },
      radio_recv: () => {
        if (!current() || !board.radio) return new Promise(() => {});
        return board.radio.recv();
      },
    };
  }

  // Hand the firmware what has arrived, but never a byte past a 0x03: what follows a break belongs
  // to the REPL the firmware is about to drop into.
  takeFirmwareInput() {
    const chunk = this.firmwareInput.shift();
    const cut = chunk.indexOf(CTRL_C);
    if (cut >= 0 && cut + 1 < chunk.length) {
      this.firmwareInput.unshift(chunk.subarray(cut + 1));
      return new Uint8Array(chunk.subarray(0, cut + 1));
    }
    return new Uint8Array(chunk);
  }

  // The in-home port: everything goes to the firmware (there is no REPL on it); kept while it runs.
  onHomeInput(data) {
    this.homeInput.push(Buffer.from(data));
    if (this.homeReader) {
      const resolve = this.homeReader;
      this.homeReader = null;
      resolve(new Uint8Array(Buffer.concat(this.homeInput.splice(0))));
    }
  }

  onSerialInput(data) {
    if (this.mode === MODE_BOOT) {
      for (const byte of data) this.replInput.push(byte);
      return;
    }
    if (this.mode === MODE_FIRMWARE) {
      this.firmwareInput.push(Buffer.from(data));
      if (this.firmwareReader) {
        const resolve = this.firmwareReader;
        this.firmwareReader = null;
        resolve(this.takeFirmwareInput());
      }
      return;
    }
    for (let i = 0; i < data.length; i++) {
      if (this.mode === MODE_FIRMWARE || this.mode === MODE_BOOT) {
        // A soft reset in the middle of this chunk: the rest goes to the new VM.
        this.onSerialInput(data.subarray(i));
        return;
      }
      this.onReplByte(data[i]);
    }
  }

  onReplByte(byte) {
    if (this.mode === MODE_RAW) {
      // Raw-paste mode hangs this VM: answer its request "understood, not supported", so mpremote
      // falls back to plain raw mode (the protocol's own fallback).
      if (this.rawPasteProbe !== null) {
        this.rawPasteProbe.push(byte);
        if (this.rawPasteProbe.length < 2) return;
        const probe = this.rawPasteProbe;
        this.rawPasteProbe = null;
        if (probe[0] === 0x41 && probe[1] === CTRL_A) {
          this.output(Buffer.from("R\x00", "latin1"));
          return;
        }
        this.feedRepl(CTRL_E);
        for (const b of probe) this.feedRepl(b);
        return;
      }
      if (byte === CTRL_E && this.rawLineLength === 0) {
        this.rawPasteProbe = [];
        return;
      }
    }
    this.feedRepl(byte);
  }

  feedRepl(byte) {
    const wasRaw = this.mode === MODE_RAW;
    const result = this.vm.replProcessChar(byte);
    if (result & PYEXEC_FORCED_EXIT) {
      this.softReset(wasRaw);
      return;
    }
    if (wasRaw) {
      if (byte === CTRL_B) this.mode = MODE_FRIENDLY;
      else if (byte === CTRL_D || byte === CTRL_C) this.rawLineLength = 0;
      else this.rawLineLength++;
    } else if (byte === CTRL_A) {
      this.mode = MODE_RAW;
      this.rawLineLength = 0;
    }
  }

  // Ctrl-D on an empty line: this port cannot reboot itself, so the board gets a new VM. RAM is
  // gone, flash stays; from the friendly REPL main.py runs again, from the raw REPL it does not
  // (as on a board, so mpremote gets a clean interpreter).
  softReset(fromRaw, { runMain = !fromRaw } = {}) {
    log(`soft reset (${fromRaw ? "raw REPL" : "REPL"})`);
    this.mode = MODE_BOOT;
    this.output(Buffer.from("MPY: soft reboot\r\n"));
    this.boot({ runMain, raw: fromRaw }).catch((error) => {
      log(`soft reset failed: ${error.stack}`);
      process.exit(1);
    });
  }
}

function macBytes(text) {
  const parts = (text || "").split(":");
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) {
    fail(`--mac must look like aa:bb:cc:dd:ee:ff, got ${text}`);
  }
  return Buffer.from(parts.join(""), "hex");
}

// A VM over the --state flash whose output goes to this process's stdout: the --test and --script modes.
async function standaloneVm(args) {
  const flash = new Flash(path.join(args.state, "flash"), args.powerCut);
  const vm = await loadMicroPython({
    heapsize: args.heap, linebuffer: false,
    stdout: (b) => process.stdout.write(b), stderr: (b) => process.stderr.write(b),
  });
  flash.load(vm.FS);
  flash.install(vm.FS);
  vm.runPython(BOARD_SETUP_PY);
  return vm;
}

// `--test MODULE`: no serial port; run one firmware test module on a fresh VM over the --state flash,
// each test_* function as its own top-level call so that the port collects garbage between tests, and
// check the live heap after each against the board's. tests/firmware/mprunner.py prints the results.
async function runTests(args) {
  const vm = await standaloneVm(args);
  const heap = new HeapMonitor(vm, args.heap);
  const runner = vm.pyimport("mprunner");
  const baseline = heap.measure();
  let names;
  try {
    names = runner.load(args.test);
  } catch (error) {
    process.stdout.write(`IMPORT FAILED ${args.test}: ${error.message}\n`);
    process.exitCode = 1;
    return;
  }
  let failed = 0;
  let count = 0;
  for (const name of names) {
    count++;
    if (!runner.run_one(name)) failed++;
    const live = await heap.settle();
    if (heap.exceeded) {
      failed++;
      process.stdout.write(`FAIL ${name}\nMemoryError: live heap ${live} bytes after the test exceeds the board's ${args.heap}\n`);
    }
  }
  process.stdout.write(`HEAP baseline=${baseline} peak_live=${heap.peakLive} board=${args.heap}\n`);
  process.stdout.write(`DONE ${count} tests, ${failed} failed\n`);
  if (failed) process.exitCode = 1;
}

// `--script FILE`: no serial port; run one script on a fresh VM over the --state flash, top-level
// `await` allowed, and exit when it is done. Between its awaits control returns to JavaScript, so the
// port collects garbage there as a running firmware's does: benchmarks measure live heap this way.
async function runScript(args) {
  const vm = await standaloneVm(args);
  try {
    await vm.runPythonAsync(vm.FS.readFile(`/flash/${args.script}`, { encoding: "utf8" }));
  } catch (error) {
    if (error.name !== "PythonError") throw error;
    process.stdout.write(`\nuncaught ${error.type}: ${error.message}\n`);
    process.exitCode = 1;
  }
}

const cliArgs = parseArgs(process.argv.slice(2));
if (cliArgs.script) {
  await runScript(cliArgs);
  process.exit();
}
if (cliArgs.test) {
  await runTests(cliArgs);
  process.exit();
}
const board = new Board(cliArgs);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    // The peak since the firmware last started: what a lab compares with the board's heap.
    const peak = board.heap ? ` (peak live heap ${board.heap.peakLive} of ${cliArgs.heap} bytes; modules loaded then: ${board.heap.peakModules})` : "";
    log(`${signal}: power off${peak}`);
    process.exit(0);
  });
}
board.start().catch((error) => {
  process.stderr.write(`virtual board: ${error.message}\n`);
  process.exit(1);
});
