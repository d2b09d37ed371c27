import { type DynamicModule, type InjectionToken, Module, type ModuleMetadata } from '@nestjs/common';
import { AccountController, ProfileController } from './account/account.controller.js';
import { AccountService } from './account/account.service.js';
import { AccessTokenGuard } from './auth/access-token.guard.js';
import { AuthController } from './auth/auth.controller.js';
import { AuthService } from './auth/auth.service.js';
import { UiaService } from './auth/uia.service.js';
import { MatrixExceptionFilter } from './common/matrix-exception.filter.js';
import { EphemeralController } from './ephemeral/ephemeral.controller.js';
import { EphemeralService } from './ephemeral/ephemeral.service.js';
import { DevicesController } from './devices/devices.controller.js';
import { DevicesService } from './devices/devices.service.js';
import { KeysController } from './keys/keys.controller.js';
import { KeysService } from './keys/keys.service.js';
import { LegacyMediaController, MediaController } from './media/media.controller.js';
import { MATRIX_MEDIA } from './media/media-port.js';
import { MediaService } from './media/media.service.js';
import { MATRIX_HOME_PORT, MATRIX_OPTIONS, MATRIX_STORE, type MatrixClientApiOptions } from './port.js';
import { RoomKeysController } from './room-keys/room-keys.controller.js';
import { RoomKeysService } from './room-keys/room-keys.service.js';
import { RoomApiService } from './rooms/room-api.service.js';
import { RoomEventsController, RoomsController } from './rooms/rooms.controller.js';
import { RoomsService } from './rooms/rooms.service.js';
import { ServerController, WellKnownController } from './server/server.controller.js';
import { ChangeFeedService } from './sync/change-feed.service.js';
import { SyncController } from './sync/sync.controller.js';
import { SyncService } from './sync/sync.service.js';
import { ToDeviceController } from './to-device/to-device.controller.js';
import { ToDeviceService } from './to-device/to-device.service.js';

/** How the home hands the module its port and store, from its own providers. */
export interface MatrixClientApiAsyncOptions {
  imports?: ModuleMetadata['imports'];
  inject?: InjectionToken[];
  useFactory: (...args: never[]) => MatrixClientApiOptions | Promise<MatrixClientApiOptions>;
}

/** The Matrix client-server API of a home, over the home's port. Exports nothing: it only serves HTTP. */
@Module({})
export class MatrixClientApiModule {
  /** With a ready port and store. */
  static forRoot(options: MatrixClientApiOptions): DynamicModule {
    return MatrixClientApiModule.forRootAsync({ useFactory: () => options });
  }

  /** With a port and store built from the home's providers. */
  static forRootAsync(options: MatrixClientApiAsyncOptions): DynamicModule {
    return {
      module: MatrixClientApiModule,
      imports: options.imports ?? [],
      controllers: [
        AuthController,
        DevicesController,
        KeysController,
        RoomsController,
        RoomEventsController,
        SyncController,
        EphemeralController,
        ToDeviceController,
        AccountController,
        ProfileController,
        ServerController,
        WellKnownController,
        MediaController,
        LegacyMediaController,
        RoomKeysController,
      ],
      providers: [
        { provide: MATRIX_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] },
        { provide: MATRIX_HOME_PORT, useFactory: (o: MatrixClientApiOptions) => o.port, inject: [MATRIX_OPTIONS] },
        { provide: MATRIX_STORE, useFactory: (o: MatrixClientApiOptions) => o.store, inject: [MATRIX_OPTIONS] },
        { provide: MATRIX_MEDIA, useFactory: (o: MatrixClientApiOptions) => o.media, inject: [MATRIX_OPTIONS] },
        MatrixExceptionFilter,
        AccessTokenGuard,
        AuthService,
        UiaService,
        DevicesService,
        KeysService,
        RoomsService,
        RoomApiService,
        ChangeFeedService,
        SyncService,
        EphemeralService,
        ToDeviceService,
        AccountService,
        MediaService,
        RoomKeysService,
      ],
    };
  }
}
