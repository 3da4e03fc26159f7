import { stat } from "node:fs/promises";

/** Why SGX cannot serve tasks on this host (device or AESM socket folder missing), or undefined. */
export async function checkSgx(sgx: {
  device: string;
  aesmdPath: string;
}): Promise<string | undefined> {
  const dev = await stat(sgx.device).catch(() => undefined);
  if (!dev)
    return `the SGX device "${sgx.device}" does not exist (install the SGX driver, or set sgx.sgx_device)`;
  if (!dev.isCharacterDevice()) return `"${sgx.device}" is not a character device`;
  const aesm = await stat(sgx.aesmdPath).catch(() => undefined);
  if (!aesm?.isDirectory())
    return `the AESM socket folder "${sgx.aesmdPath}" does not exist (install and start aesmd, or set sgx.aesmd_path)`;
  return undefined;
}
