/**
 * The holder of a spare task network's namespace (see docs/architecture.md, "Spare networks and
 * their holders"): a container of the executor's own, on the spare network, whose one process
 * sleeps and holds the network namespace, so that a task started on that network joins the
 * namespace (`NetworkMode: container:<holder>`) instead of having the engine set one up on its start
 * path (a new namespace, a veth pair, the engine's set-up hook: most of a `docker start` here).
 * Kubernetes' pods do the same with their pause container.
 *
 * Its image is made by the executor itself (nothing is pulled): one static x86-64 program of 129
 * bytes, written out below instruction by instruction, imported as an image of one layer. On other
 * machines the executor keeps spare networks without holders.
 */
import type { ContainerSpec } from "./backend.ts";

/** The holder's one program: the ELF file, 64-byte header, one 56-byte program header, 9 bytes of code. */
export function holderProgram(): Uint8Array {
  const BASE = 0x400000;
  const CODE_AT = 64 + 56;
  const code = [
    0xb8,
    0x22,
    0x00,
    0x00,
    0x00, // mov eax, 34 (pause: sleep until a signal)
    0x0f,
    0x05, //                   syscall
    0xeb,
    0xf7, //                   jmp back to the mov (-9), should a signal wake it
  ];
  const size = CODE_AT + code.length;
  const buf = new Uint8Array(size);
  const v = new DataView(buf.buffer);
  buf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]); // ELF magic, 64-bit, little-endian, version 1, System V
  v.setUint16(16, 2, true); // e_type: executable
  v.setUint16(18, 0x3e, true); // e_machine: x86-64
  v.setUint32(20, 1, true); // e_version
  v.setBigUint64(24, BigInt(BASE + CODE_AT), true); // e_entry
  v.setBigUint64(32, 64n, true); // e_phoff: the program header follows the ELF header
  v.setUint16(52, 64, true); // e_ehsize
  v.setUint16(54, 56, true); // e_phentsize
  v.setUint16(56, 1, true); // e_phnum (no section headers)
  v.setUint32(64, 1, true); // p_type: PT_LOAD
  v.setUint32(68, 5, true); // p_flags: read and execute
  v.setBigUint64(72, 0n, true); // p_offset: the whole file is loaded ...
  v.setBigUint64(80, BigInt(BASE), true); // p_vaddr ... at BASE
  v.setBigUint64(88, BigInt(BASE), true); // p_paddr
  v.setBigUint64(96, BigInt(size), true); // p_filesz
  v.setBigUint64(104, BigInt(size), true); // p_memsz
  v.setBigUint64(112, 0x1000n, true); // p_align
  buf.set(code, CODE_AT);
  return buf;
}

/** The machines (`uname -m`, as the engine's info says) whose engines can run the holder. */
export const HOLDER_MACHINES = new Set(["x86_64", "amd64"]);

/** The holder's image, tagged by a hash of its program: a changed program is a new image. */
export const HOLDER_IMAGE = `meca-executor/netns-holder:${fnv(holderProgram()).toString(16).padStart(8, "0")}`;

/** What makes the image from the tar (Dockerfile instructions the import applies). */
export const HOLDER_CHANGES = ['ENTRYPOINT ["/hold"]', "USER 65534:65534"];

/** The image's one layer: a tar of the program at /hold. */
export function holderTar(): Uint8Array {
  return ustar("hold", holderProgram(), 0o755);
}

/**
 * The holder's container on network `network`: the smallest limits the engine takes, nothing it
 * may do (all capabilities dropped, read-only root, nobody), runc whatever the engine's default.
 */
export function holderSpec(o: {
  name: string;
  network: string;
  labels: Record<string, string>;
  cgroupParent?: string;
}): ContainerSpec {
  return {
    name: o.name,
    image: HOLDER_IMAGE,
    labels: o.labels,
    nanoCpus: 10_000_000,
    // The engine refuses less than 6 MiB.
    memoryBytes: 8 * 1024 * 1024,
    pidsLimit: 4,
    runtime: "runc",
    network: o.network,
    securityOpt: ["no-new-privileges:true"],
    capDrop: ["ALL"],
    nofile: 16,
    readOnlyRoot: true,
    user: "65534:65534",
    cgroupParent: o.cgroupParent,
    privileged: false,
  };
}

/** A tar (POSIX ustar) of one regular file at the root, owned by root. */
export function ustar(name: string, data: Uint8Array, mode: number): Uint8Array {
  const BLOCK = 512;
  const out = new Uint8Array(BLOCK + Math.ceil(data.length / BLOCK) * BLOCK + 2 * BLOCK);
  const field = (at: number, len: number, text: string) =>
    out.set(new TextEncoder().encode(text).subarray(0, len), at);
  const octal = (at: number, len: number, n: number) =>
    field(at, len, n.toString(8).padStart(len - 1, "0") + "\0");
  field(0, 100, name);
  octal(100, 8, mode);
  octal(108, 8, 0); // uid
  octal(116, 8, 0); // gid
  octal(124, 12, data.length);
  octal(136, 12, 0); // mtime: fixed, so that the same program is the same layer
  field(148, 8, "        "); // the checksum counts its own field as spaces
  field(156, 1, "0"); // a regular file
  field(257, 8, "ustar\u000000");
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += out[i]!;
  field(148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  out.set(data, BLOCK);
  return out;
}

/** FNV-1a of bytes, an unsigned 32-bit number. */
function fnv(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}
