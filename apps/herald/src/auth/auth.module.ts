import { Module } from '@nestjs/common';
import { ApiKeyGuard } from './api-key.guard';
import { ApiKeyService } from './api-key.service';
import { UpgradeAuthService } from './upgrade-auth.service';
import { TokenIssuer } from './token-issuer';
import { UserTokenGuard } from './user-token.guard';
import { UserTokenService } from './user-token.service';

@Module({
  providers: [ApiKeyService, ApiKeyGuard, UserTokenService, UpgradeAuthService, UserTokenGuard, TokenIssuer],
  exports: [ApiKeyService, ApiKeyGuard, UserTokenService, UpgradeAuthService, UserTokenGuard, TokenIssuer],
})
export class AuthModule {}
