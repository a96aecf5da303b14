// Host devices a node advertises: the classes an agent looks for in its device directory, and the
// extended resource and label each class is advertised under (`devices.bramble.dev/serial: 2`,
// label `devices.bramble.dev/serial: "true"`). Shared by the agent (scan, allocation) and the hub
// (which labels a node may set on itself).

export const DEVICE_RESOURCE_PREFIX = 'devices.bramble.dev/'

/** Device file names per class: USB serial adapters and modems, I²C buses, cameras, GPIO chips. */
export const DEVICE_CLASSES: Readonly<Record<string, readonly RegExp[]>> = {
  serial: [/^ttyUSB\d+$/, /^ttyACM\d+$/],
  i2c: [/^i2c-\d+$/],
  video: [/^video\d+$/],
  gpio: [/^gpiochip\d+$/],
}

/** The class of a device file name (`ttyUSB0` → `serial`), or undefined. */
export function deviceClassOf(name: string): string | undefined {
  for (const [cls, patterns] of Object.entries(DEVICE_CLASSES)) if (patterns.some((p) => p.test(name))) return cls
  return undefined
}

/** `serial` → `devices.bramble.dev/serial`. */
export function deviceResource(cls: string): string {
  return DEVICE_RESOURCE_PREFIX + cls
}

/** `devices.bramble.dev/serial` → `serial`; undefined for any other resource name. */
export function deviceClassOfResource(resource: string): string | undefined {
  if (!resource.startsWith(DEVICE_RESOURCE_PREFIX)) return undefined
  const cls = resource.slice(DEVICE_RESOURCE_PREFIX.length)
  return Object.hasOwn(DEVICE_CLASSES, cls) ? cls : undefined
}

/** One collator for every comparison: localeCompare with options builds one per call. */
const DEVICE_NAME_ORDER = new Intl.Collator('en', { numeric: true })

/** Device names in a stable order: by class, then the number in the name (`ttyUSB2` before `ttyUSB10`). */
export function compareDeviceNames(a: string, b: string): number {
  return DEVICE_NAME_ORDER.compare(a, b)
}
