import { Module } from '@nestjs/common';
import { ApiKeyGuard } from './api-key.guard';
import { ApiKeyService } from './api-key.service';
import { UpgradeAuthService } from './upgrade-auth.service';
import { TicketService } from './ticket.service';
import { TokenIssuer } from './token-issuer';
import { UserTokenGuard } from './user-token.guard';
import { UserTokenService } from './user-token.service';

/** Every credential check of the service, shared by the modules whose routes take one. */
const AUTH = [
  ApiKeyService,
  ApiKeyGuard,
  UserTokenService,
  UpgradeAuthService,
  UserTokenGuard,
  TokenIssuer,
  TicketService,
];

@Module({ providers: AUTH, exports: AUTH })
export class AuthModule {}
