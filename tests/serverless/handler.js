'use strict';

// `GET /hello?name=…`, answered as JSON.
function hello(params) {
  return { payload: 'Hello, ' + (params.name || 'World') + '!' };
}

// `GET /books/{id}`, answered as an HTTP response: the path parameter and the path.
function book(params) {
  return { body: { id: params.id || null, path: params.__ow_path } };
}

exports.hello = hello;
exports.book = book;
