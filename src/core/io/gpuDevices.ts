/**
 * A cheap look for GPU device nodes, so that `--backend auto` does not load the WebGPU runtime
 * (about 200 MiB and seconds of start-up) on machines that plainly have no GPU. Linux exposes
 * NVIDIA cards as /dev/nvidia*, AMD compute as /dev/kfd and render nodes of any vendor as
 * /dev/dri/renderD*; macOS and Windows always have a GPU adapter of some kind.
 */
import fs from 'node:fs';

export function gpuDeviceNodesPresent(): boolean {
  if (process.platform !== 'linux') return true;
  if (fs.existsSync('/dev/nvidiactl') || fs.existsSync('/dev/nvidia0') || fs.existsSync('/dev/kfd')) return true;
  try {
    return fs.readdirSync('/dev/dri').some((n) => n.startsWith('renderD'));
  } catch {
    return false;
  }
}
