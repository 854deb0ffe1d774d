import { Body, CanActivate, Controller, Header, Inject, Injectable, Post, UseGuards } from '@nestjs/common';
import { tokenRequestSchema, type TokenResponse } from '@herald/protocol';
import { ApiBody, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { NotFoundError } from '../common/errors';
import { ZodPipe } from '../common/zod.pipe';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { ApiErrors, schemaRef } from '../openapi/decorators';
import { TOKEN_PROBLEMS, TokenIssuer, type ValidTokenRequest } from '../auth/token-issuer';

/** Short, so a demo token is worth little and the page shows a token refresh. */
export const DEMO_TOKEN_MAX_TTL_SECONDS = 900;

/** A demo token request: at most DEMO_TOKEN_MAX_TTL_SECONDS (and HERALD_TOKEN_MAX_TTL_SECONDS). */
@Injectable()
export class DemoTokenRequestPipe extends ZodPipe<ReturnType<typeof tokenRequestSchema>> {
  constructor(@Inject(HERALD_CONFIG) config: HeraldConfig) {
    super(tokenRequestSchema(Math.min(DEMO_TOKEN_MAX_TTL_SECONDS, config.tokenMaxTtlSeconds)), TOKEN_PROBLEMS);
  }
}

/** 404 while demo tokens are off, before the body is read. */
@Injectable()
export class DemoTokensGuard implements CanActivate {
  constructor(@Inject(HERALD_CONFIG) private readonly config: HeraldConfig) {}

  canActivate(): boolean {
    if (!this.config.demoTokens) {
      throw new NotFoundError(
        'demo tokens are off; set HERALD_DEMO_TOKENS=true to use the demo page (never in production)',
      );
    }
    return true;
  }
}

/** Tokens for the demo page, with no credential at all: off unless HERALD_DEMO_TOKENS=true. */
@Controller('v1/demo')
@ApiTags('demo')
export class DemoController {
  constructor(private readonly issuer: TokenIssuer) {}

  @Post('tokens')
  @Header('Cache-Control', 'no-store')
  @UseGuards(DemoTokensGuard)
  @ApiOperation({
    summary: 'Mint a user token for the demo page (no authentication; off unless HERALD_DEMO_TOKENS=true)',
    description:
      'Anyone can become any user through this endpoint, so it answers 404 unless the operator turned it on. ' +
      `Tokens live at most ${DEMO_TOKEN_MAX_TTL_SECONDS} s. Answered with \`Cache-Control: no-store\`.`,
  })
  @ApiBody({ schema: schemaRef('TokenRequest'), examples: { alice: { value: { userId: 'alice' } } } })
  @ApiResponse({ status: 201, schema: schemaRef('TokenResponse') })
  @ApiErrors(400, 404)
  token(@Body(DemoTokenRequestPipe) request: ValidTokenRequest): TokenResponse {
    return this.issuer.issue(request);
  }
}
