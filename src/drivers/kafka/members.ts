/**
 * The brokers of a Kafka cluster as one broker knows them (GET /discover). Pure: a decoded Metadata
 * response in, a MemberList out.
 *
 * Metadata lists the brokers registered now (alive in the controller's view), each at its advertised
 * address for the listener the exporter connected to: exactly what the driver dials. A broker that is
 * down is not listed until it registers again. A broker has no single role (it leads some partitions
 * and follows others: the model's shards are partitions), so every member's role is unknown; the
 * native role says which broker is the controller. A seed address that no broker advertises (a
 * bootstrap Service in front of all brokers) is not a member of its own: the brokers are listed at
 * their advertised addresses only.
 */
import type { Member, MemberList } from '../../core/model';
import type { KafkaMetadata } from './parse';

export function kafkaMembers(metadata: KafkaMetadata, self: { host: string; port: number }): MemberList {
  const host = self.host.toLowerCase();
  const members: Member[] = metadata.brokers.map((b) => {
    const member: Member = {
      host: b.host,
      port: b.port,
      role: 'unknown',
      nativeRole: b.nodeId === metadata.controllerId ? 'controller' : 'broker',
    };
    if (b.port === self.port && b.host.toLowerCase() === host) member.self = true;
    return member;
  });
  return { members, complete: true };
}
