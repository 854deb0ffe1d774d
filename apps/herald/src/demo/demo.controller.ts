import { Body, Controller, Inject, Post } from '@nestjs/common';
import type { TokenResponse } from '@herald/protocol';
import { ApiBody, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { NotFoundError } from '../common/errors';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { ApiErrors } from '../openapi/decorators';
import { TokenRequestDto, TokenResponseDto } from '../openapi/schemas';
import { TokenIssuer } from '../auth/token-issuer';

/** Short, so a demo token is worth little and the page shows a token refresh. */
export const DEMO_TOKEN_MAX_TTL_SECONDS = 900;

/** Tokens for the demo page, with no credential at all: off unless HERALD_DEMO_TOKENS=true. */
@Controller('v1/demo')
@ApiTags('demo')
export class DemoController {
  constructor(
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
    private readonly issuer: TokenIssuer,
  ) {}

  @Post('tokens')
  @ApiOperation({
    summary: 'Mint a user token for the demo page (no authentication; off unless HERALD_DEMO_TOKENS=true)',
    description:
      'Anyone can become any user through this endpoint, so it answers 404 unless the operator turned it on. ' +
      `Tokens live at most ${DEMO_TOKEN_MAX_TTL_SECONDS} s.`,
  })
  @ApiBody({ type: TokenRequestDto, examples: { alice: { value: { userId: 'alice' } } } })
  @ApiResponse({ status: 201, type: TokenResponseDto })
  @ApiErrors(400, 404)
  token(@Body() body: unknown): TokenResponse {
    if (!this.config.demoTokens) {
      throw new NotFoundError(
        'demo tokens are off; set HERALD_DEMO_TOKENS=true to use the demo page (never in production)',
      );
    }
    return this.issuer.issue(body, DEMO_TOKEN_MAX_TTL_SECONDS);
  }
}
