import { Inject, Injectable } from '@nestjs/common';
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { bearerOf, Realm } from '../common/bearer';
import { UnauthorizedError } from '../common/errors';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { keyDigest, publisherKeyId } from './publisher-key-id';

export interface Publisher {
  /** Short, non-secret id of the key (a hash prefix): safe in logs and the database. */
  keyId: string;
}

/** Publisher API keys: compared in constant time, identified by a hash prefix. */
@Injectable()
export class ApiKeyService {
  private readonly keys: { digest: Buffer; keyId: string }[];

  constructor(@Inject(HERALD_CONFIG) config: HeraldConfig) {
    this.keys = config.apiKeys.map((key) => ({ digest: keyDigest(key), keyId: publisherKeyId(key) }));
  }

  authenticate(presented: string): Publisher | null {
    const d = keyDigest(presented);
    let found: Publisher | null = null;
    for (const key of this.keys) if (timingSafeEqual(key.digest, d)) found = { keyId: key.keyId };
    return found;
  }

  /** The publisher of a request's `Authorization: Bearer <API key>`; 401 when it is missing or unknown. */
  publisherOf(request: IncomingMessage): Publisher {
    const key = bearerOf(request);
    if (!key) throw new UnauthorizedError('missing "Authorization: Bearer <API key>" header', { realm: Realm.Herald });
    const publisher = this.authenticate(key);
    if (!publisher) throw new UnauthorizedError('unknown API key', { realm: Realm.Herald, invalidToken: true });
    return publisher;
  }
}
