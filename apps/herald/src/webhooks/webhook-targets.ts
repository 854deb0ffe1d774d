import { Inject, Injectable } from '@nestjs/common';
import { BadRequestError } from '../common/errors';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { AddressGuard, checkTarget, dnsServerResolver, Resolve, systemResolver } from './address-guard';
import { postWebhook, WebhookRequest, WebhookResponse } from './webhook-http';

/**
 * Where webhooks may go (ADR 0027): every resolved address is checked against the refused ranges, less
 * HERALD_WEBHOOK_ALLOWED_CIDRS, when a URL is registered and again at each connect (a name may resolve
 * elsewhere by then); no redirect is followed.
 */
@Injectable()
export class WebhookTargets {
  private readonly guard: AddressGuard;
  private readonly resolve: Resolve;

  constructor(@Inject(HERALD_CONFIG) config: HeraldConfig) {
    this.guard = new AddressGuard(config.webhooks.allowedCidrs);
    this.resolve = config.webhooks.dnsServer ? dnsServerResolver(config.webhooks.dnsServer) : systemResolver;
  }

  /** 400 naming `field` when Herald would not call `url`: what it resolves to, or that it does not resolve. */
  async check(field: string, url: string): Promise<void> {
    let refusal: string | null;
    try {
      refusal = await checkTarget(new URL(url), this.guard, this.resolve);
    } catch (error) {
      refusal = `${new URL(url).hostname} could not be resolved (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`;
    }
    if (refusal !== null) throw new BadRequestError(`${field} refused: ${refusal}`, [{ field, reason: refusal }]);
  }

  post(request: WebhookRequest): Promise<WebhookResponse> {
    return postWebhook(request, { guard: this.guard, resolve: this.resolve });
  }
}
