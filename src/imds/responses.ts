/**
 * What the metadata services answer when they refuse: status titles and the AWS error page. The
 * emulator serves them and the guard refuses with them, so both answer the same bytes.
 */

const TITLES: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** The reason phrase of a status ("Forbidden"), "Error" for one not listed. */
export function statusTitle(status: number): string {
  return TITLES[status] ?? 'Error';
}

/** The small XHTML page the AWS metadata service (and Alibaba's copy of it) sends with an error status. */
export function awsErrorPage(status: number): string {
  const t = `${status} - ${statusTitle(status)}`;
  return (
    '<?xml version="1.0" encoding="iso-8859-1"?>\n' +
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n' +
    '\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n' +
    '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n' +
    ` <head>\n  <title>${t}</title>\n </head>\n <body>\n  <h1>${t}</h1>\n </body>\n</html>\n`
  );
}
