// Launcher for a native task binary. Written once; `cargo xtask package`
// copies it into every task folder next to task.json.
//
// The agent only starts Node (or PowerShell) handlers, so this file is the
// handler's target: it picks bin/<platform>-<arch>/<task name> (unpacking
// it from bin/<task name>.br on first run) and runs it with the same
// environment and stdio, passes cancellation on, and exits with the
// binary's code. It must never load azure-pipelines-task-lib, which
// deletes INPUT_*, SECRET_* and ENDPOINT_AUTH_* from the environment.
'use strict';

const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');
const os = require('os');
const zlib = require('zlib');

function escapeData(s) {
  return String(s).replace(/%/g, '%AZP25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function report(message) {
  process.stdout.write('##vso[task.logissue type=error;]' + escapeData(message) + '\n');
  process.stdout.write('##vso[task.complete result=Failed;]' + escapeData(message) + '\n');
}

function fail(message) {
  report(message);
  process.exit(1);
}

let name;
try {
  name = JSON.parse(fs.readFileSync(path.join(__dirname, 'task.json'), 'utf8')).name;
} catch (e) {
  fail('Cannot read task.json next to the launcher: ' + e.message);
}

const platform = process.platform + '-' + process.arch;
const binName = name.toLowerCase() + (process.platform === 'win32' ? '.exe' : '');
const binDir = path.join(__dirname, 'bin');
let exe = path.join(binDir, platform, binName);

// The packager ships every platform's binary in one Brotli stream,
// bin/<name>.br, and bin/index.json says where each one lies in it.
let index = null;
try {
  index = JSON.parse(fs.readFileSync(path.join(binDir, 'index.json'), 'utf8'));
} catch (e) {
  // unpacked layout (local runs): bin/<platform>/<binary>
}

if (!fs.existsSync(exe) && index && index.platforms && index.platforms[platform]) {
  exe = unpack(index, index.platforms[platform], exe);
}

if (!fs.existsSync(exe)) {
  const shipped = new Set(index && index.platforms ? Object.keys(index.platforms) : []);
  try {
    for (const entry of fs.readdirSync(binDir, { withFileTypes: true })) {
      if (entry.isDirectory()) {
        shipped.add(entry.name);
      }
    }
  } catch (e) {
    // no bin folder at all
  }
  const list = Array.from(shipped).sort();
  fail(name + ' has no binary for this agent\'s platform ' + platform +
    '. Platforms shipped: ' + (list.length ? list.join(', ') : 'none') + '.');
}

if (process.platform !== 'win32') {
  // Zip files written by the packager keep no Unix mode bits.
  try {
    fs.chmodSync(exe, 0o755);
  } catch (e) {
    // Read-only task folder: the bit may already be set; spawn will tell.
  }
}

// The first run unpacks this platform's binary next to the stream, in
// bin/<platform>/; when the task folder is read-only, into a private folder
// of this user under the temp folder (mode 700, checked to be ours, and a
// binary found there is used only if it is byte for byte what the stream
// holds). A temporary name and a rename make a half-written binary
// impossible, also when two jobs start the task at once.
function unpack(index, entry, target) {
  let data;
  try {
    const stream = zlib.brotliDecompressSync(fs.readFileSync(path.join(binDir, index.stream)));
    data = stream.subarray(entry.offset, entry.offset + entry.size);
    if (data.length !== entry.size) {
      throw new Error('the stream holds ' + stream.length + ' bytes, fewer than bin/index.json says');
    }
    unfilter(data, entry.filter);
  } catch (e) {
    fail('Cannot unpack the ' + platform + ' binary from ' + path.join(binDir, String(index.stream)) + ': ' + e.message);
  }
  const errors = [];
  try {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    return place(data, target);
  } catch (e) {
    errors.push(target + ': ' + e.message);
  }
  try {
    return place(data, path.join(privateDir(), binName));
  } catch (e) {
    errors.push(e.message);
  }
  fail('Cannot unpack the ' + platform + ' binary: ' + errors.join('; '));
}

// The packager rewrote relative branch targets as absolute ones, which
// compress better (xtask/src/filters.rs); this is the exact inverse.
function unfilter(data, filter) {
  if (filter === undefined) {
    return;
  }
  if (filter === 'x86') {
    // call/jmp rel32 whose top byte is 00 or FF, kept to 25 bits.
    // The operand is stepped over whether or not it was rewritten.
    let i = 0;
    while (i + 5 <= data.length) {
      if (data[i] !== 0xe8 && data[i] !== 0xe9) {
        i += 1;
        continue;
      }
      const top = data[i + 4];
      if (top === 0x00 || top === 0xff) {
        const value = data.readUInt32LE(i + 1);
        data.writeUInt32LE((((value - (i + 5)) << 7) >> 7) >>> 0, i + 1);
      }
      i += 5;
    }
  } else if (filter === 'arm64') {
    // bl imm26, in instructions.
    for (let i = 0; i + 4 <= data.length; i += 4) {
      const insn = data.readUInt32LE(i);
      if (insn >>> 26 === 0x25) {
        const imm = ((insn & 0x03ffffff) - i / 4) & 0x03ffffff;
        data.writeUInt32LE((0x94000000 | imm) >>> 0, i);
      }
    }
  } else {
    throw new Error('unknown filter ' + filter + ' in bin/index.json');
  }
}

function place(data, dest) {
  if (fs.existsSync(dest) && fs.readFileSync(dest).equals(data)) {
    return dest;
  }
  const tmp = dest + '.' + process.pid + '.tmp';
  try {
    fs.writeFileSync(tmp, data, { mode: 0o755 });
    fs.renameSync(tmp, dest);
    return dest;
  } catch (e) {
    try {
      fs.unlinkSync(tmp);
    } catch (ignored) {
      // never written
    }
    // Another job may have put the same binary there first.
    if (fs.existsSync(dest) && fs.readFileSync(dest).equals(data)) {
      return dest;
    }
    throw e;
  }
}

function privateDir() {
  let version = '0.0.0';
  try {
    const v = JSON.parse(fs.readFileSync(path.join(__dirname, 'task.json'), 'utf8')).version;
    if (v && v.Major !== undefined) {
      version = [v.Major, v.Minor, v.Patch].join('.');
    }
  } catch (e) {
    // unversioned: local runs
  }
  const uid = typeof process.getuid === 'function' ? process.getuid() : null;
  const base = path.join(os.tmpdir(), 'aws-pipeline-tasks' + (uid === null ? '' : '-' + uid));
  fs.mkdirSync(base, { recursive: true, mode: 0o700 });
  if (uid !== null) {
    const st = fs.lstatSync(base);
    if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) {
      throw new Error(base + ' is not a private folder of this user');
    }
  }
  const dir = path.join(base, name + '-' + version + '-' + platform);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

// Cancelling a step: on Linux and macOS the agent signals node (SIGINT,
// then SIGTERM), and the launcher passes the signal on. On Windows it sends
// Ctrl-C (then Ctrl-Break) to the console, which every process on it gets,
// the binary too; node would only be able to kill the binary outright
// (TerminateProcess), which leaves no time to clean up (abort multipart
// uploads). So there the launcher only keeps waiting for the binary's exit.
// The handlers are in place before the binary starts: a signal that comes
// while it starts is passed on too, never lost with node's default action
// (which would end node and leave the binary running).
let cancelled = false;
let child = null;
let pending = null;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGBREAK']) {
  process.on(signal, () => {
    cancelled = true;
    if (process.platform === 'win32') {
      return;
    }
    if (child === null) {
      pending = signal;
      return;
    }
    try {
      child.kill(signal);
    } catch (e) {
      // already gone
    }
  });
}
child = spawn(exe, process.argv.slice(2), { stdio: 'inherit', env: process.env, windowsHide: true });
if (pending !== null) {
  try {
    child.kill(pending);
  } catch (e) {
    // already gone
  }
}

child.on('error', (e) => fail('Cannot start ' + exe + ': ' + e.message));
// A binary that dies on its own by a signal (or, on Windows, with an
// NTSTATUS code such as a fail-fast) has said nothing: the shipped builds
// abort on a panic without unwinding or printing, which keeps them small.
// The launcher fails the task in its place.
child.on('exit', (code, signal) => {
  if (signal && !cancelled) {
    report(name + ' stopped abnormally (' + signal + ') on ' + platform +
      ': this is a bug in the task; please report it with this log.');
  } else if (process.platform === 'win32' && code !== null && code >= 0xc0000000 && !cancelled) {
    report(name + ' stopped abnormally (exception 0x' + code.toString(16).toUpperCase() + ') on ' +
      platform + ': this is a bug in the task; please report it with this log.');
  }
  if (signal) {
    process.exit(128 + (os.constants.signals[signal] || 0));
  }
  process.exit(code === null ? 1 : code);
});
