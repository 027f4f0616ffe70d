/** The Dropbox routes the emulator serves, by name. */

import { downloadRoute } from './download.js';
import { exportRoute, getTemporaryLinkRoute } from './export.js';
import { copyRoute, createFolderRoute, deleteRoute, moveRoute } from './file-routes.js';
import { getMetadataRoute } from './get-metadata.js';
import { getLatestCursorRoute, listFolderContinueRoute, listFolderRoute } from './list-folder.js';
import { longpollRoute } from './longpoll.js';
import type { Route } from './route-table.js';
import { uploadRoute } from './upload.js';
import { uploadSessionAppendRoute, uploadSessionFinishRoute, uploadSessionStartRoute } from './upload-session.js';
import { getCurrentAccountRoute, getSpaceUsageRoute } from './users.js';

export function createRouteMap(): ReadonlyMap<string, Route> {
  const routes: Route[] = [
    listFolderRoute,
    listFolderContinueRoute,
    getLatestCursorRoute,
    longpollRoute,
    getMetadataRoute,
    downloadRoute,
    exportRoute,
    getTemporaryLinkRoute,
    uploadRoute,
    uploadSessionStartRoute,
    uploadSessionAppendRoute,
    uploadSessionFinishRoute,
    createFolderRoute,
    deleteRoute,
    moveRoute,
    copyRoute,
    getCurrentAccountRoute,
    getSpaceUsageRoute,
  ];
  return new Map(routes.map((route) => [route.name, route]));
}
