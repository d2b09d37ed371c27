import type { EduCarrier } from '../rooms/federation.js';
import { TO_DEVICE_EDU, type ToDevice } from './to-device.js';

/**
 * The EDU carrier federation is given: `m.direct_to_device` EDUs go to the home's ToDevice, the others (typing,
 * receipts, presence) to its Ephemeral; local EDUs come from the Ephemeral (ToDevice sends its own, from its
 * durable outbox).
 */
export function eduCarrier(ephemeral: EduCarrier | undefined, toDevice: ToDevice | undefined): EduCarrier {
  return {
    onLocalEdu(listener) {
      ephemeral?.onLocalEdu(listener);
    },
    async receiveEdu(origin, edu) {
      const type = (edu as { edu_type?: unknown } | null)?.edu_type;
      if (type === TO_DEVICE_EDU) {
        return toDevice === undefined
          ? { accepted: 0, refused: ['this home carries no to-device messages'] }
          : toDevice.receiveEdu(origin, edu);
      }
      return ephemeral === undefined
        ? { accepted: 0, refused: [`this home takes no ${String(type)} EDUs`] }
        : ephemeral.receiveEdu(origin, edu);
    },
  };
}
